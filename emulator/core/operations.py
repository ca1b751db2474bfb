"""Asynchronous ARM operations: records, their status bodies and the ticker that advances every transition.

A long-running request creates an operation record, returns 201/202 with `Azure-AsyncOperation`/`Location`
headers, and schedules `op.complete` at `start + latency`. The completion hook of the operation's kind decides
the outcome at that moment (so a role assignment that propagates during the operation counts, as in Azure).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable
from typing import Any

from emulator.core.clock import Clock
from emulator.core.store import Record, State

log = logging.getLogger("emulator.operations")

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
CompletionHook = Callable[[Record], None]


def new_operation_id() -> str:
    """Data Protection style: base64 of `<guid>;<guid>` (ends with `=`, so URL handling must keep it verbatim)."""
    while True:
        raw = f"{uuid.uuid4()};{uuid.uuid4()}"
        op_id = base64.b64encode(raw.encode()).decode()
        if "/" not in op_id and "+" not in op_id:  # keep ids single path segments without escaping
            return op_id


class Operations:
    """Registry of async operations and of scheduled transitions (the ticker)."""

    def __init__(self, state: State, clock: Clock, spelling: Callable[[], str]) -> None:
        self.state = state
        self.clock = clock
        self._spelling = spelling
        self._hooks: dict[str, CompletionHook] = {}
        self._actions: dict[str, Callable[[str], None]] = {"op.complete": self._complete}

    def on_complete(self, kind: str, hook: CompletionHook) -> None:
        """Register what happens when an operation of `kind` reaches its due time."""
        self._hooks[kind] = hook

    def on_action(self, name: str, action: Callable[[str], None]) -> None:
        """Register a scheduled transition (e.g. `server.ready`, `instance.configured`)."""
        self._actions[name] = action

    def create(self, kind: str, latency_s: float, **fields: Any) -> Record:
        """Start an operation that completes after `latency_s` service seconds."""
        op_id = new_operation_id() if fields.get("provider") == "dataprotection" else str(uuid.uuid4())
        now = self.clock.now()
        record: Record = {
            "id": op_id,
            "kind": kind,
            "status": "InProgress",
            "spelling": self._spelling(),
            "start": now,
            "end": None,
            "error": None,
            "result": None,
            **fields,
        }
        with self.state.lock:
            self.state.put("operations", op_id, record)
            self.state.schedule(self.clock.due(latency_s), "op.complete", op_id)
        return record

    def get(self, op_id: str) -> Record | None:
        return self.state.get("operations", op_id)

    def finish(self, record: Record, status: str, error: dict[str, Any] | None = None) -> None:
        with self.state.lock:
            record["status"] = status
            record["error"] = error
            record["end"] = self.clock.now()
            self.state.touch()

    def _complete(self, op_id: str) -> None:
        record = self.get(op_id)
        if record is None or record["status"] != "InProgress":
            return
        hook = self._hooks.get(record["kind"])
        if hook is None:
            self.finish(record, "Succeeded")
            return
        hook(record)

    def tick(self) -> int:
        """Run every transition that is due; returns how many ran."""
        due = self.state.pop_due(self.clock.now())
        for action, key in due:
            fn = self._actions.get(action)
            if fn is None:
                log.error("unknown scheduled action %s", action)
                continue
            try:
                fn(key)
            except Exception:
                log.exception("scheduled action %s(%s) failed", action, key)
        return len(due)

    def prune(self, retention_s: float) -> int:
        """Forget finished operations older than `retention_s` service seconds (bounded memory and snapshots)."""
        cutoff = self.clock.now() - self.clock.real(retention_s)
        with self.state.lock:
            old = [k for k, op in self.state.collections["operations"].items() if op["end"] and op["end"] < cutoff]
            for k in old:
                self.state.delete("operations", k)
        return len(old)

    async def run(self, retention_s: Callable[[], float], interval: float = 0.02) -> None:
        """The ticker task: advance transitions every `interval` real seconds; prune old operations now and then."""
        ticks = 0
        while True:
            self.tick()
            ticks += 1
            if ticks % 500 == 0:
                self.prune(retention_s())
            await asyncio.sleep(interval)

    def status_word(self, record: Record) -> str:
        """`InProgress`/`Inprogress` (both are real), then the terminal status."""
        if record["status"] == "InProgress":
            return str(record.get("spelling") or "InProgress")
        return str(record["status"])
