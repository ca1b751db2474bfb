"""In-memory state as plain JSON-able dicts, with secondary indexes, a lock, a scheduler and snapshots.

Every record is a dict keyed by its lower-cased resource ID inside a named collection, so a snapshot is a plain
JSON dump (never a pickle) and a restart rebuilds the indexes from the records. Secondary indexes
(servers per resource group, instances per datasource, role assignments per principal...) keep lookups O(1)
when thousands of servers exist. Mutations happen under `lock`; the aiohttp loop is single-threaded, but the
snapshot writer runs in a worker thread and the lock is the one rule a reader of a model has to know.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("emulator.store")

Record = dict[str, Any]
COLLECTIONS = (
    "subscriptions",
    "resource_groups",
    "servers",
    "server_children",
    "vaults",
    "policies",
    "instances",
    "deleted_instances",
    "jobs",
    "recovery_points",
    "job_faults",
    "operations",
    "role_assignments",
    "identities",
)


class State:
    """All emulated resources. Models own the rules; this class only stores, indexes and persists."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.collections: dict[str, dict[str, Record]] = {name: {} for name in COLLECTIONS}
        self._indexes: dict[str, dict[str, dict[str, None]]] = {}
        self._schedule: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self.dirty = False

    # -- records ---------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> Record | None:
        return self.collections[collection].get(key)

    def put(self, collection: str, key: str, record: Record, indexes: list[tuple[str, str]] | None = None) -> Record:
        """Insert or replace a record; `indexes` are (index name, group key) pairs it belongs to."""
        with self.lock:
            old = self.collections[collection].get(key)
            if old is not None:
                self._unindex(key, old)
            record["_idx"] = [list(pair) for pair in indexes or []]
            self.collections[collection][key] = record
            self._index(key, record)
            self.dirty = True
            return record

    def delete(self, collection: str, key: str) -> Record | None:
        with self.lock:
            record = self.collections[collection].pop(key, None)
            if record is not None:
                self._unindex(key, record)
                self.dirty = True
            return record

    def touch(self) -> None:
        """Mark state changed after an in-place record update."""
        self.dirty = True

    def members(self, index: str, group: str) -> Iterator[str]:
        """Keys in an index group, in insertion order (a snapshot, safe against concurrent change)."""
        return iter(list(self._indexes.get(index, {}).get(group, {})))

    def groups(self, index: str) -> list[str]:
        """The group names an index has members in (a snapshot)."""
        return list(self._indexes.get(index, {}))

    def count(self, index: str, group: str) -> int:
        return len(self._indexes.get(index, {}).get(group, {}))

    def _index(self, key: str, record: Record) -> None:
        for name, group in record.get("_idx", []):
            self._indexes.setdefault(name, {}).setdefault(group, {})[key] = None

    def _unindex(self, key: str, record: Record) -> None:
        for name, group in record.get("_idx", []):
            bucket = self._indexes.get(name, {}).get(group)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._indexes[name][group]

    # -- scheduler -------------------------------------------------------------------------------------
    def schedule(self, due: float, action: str, key: str) -> None:
        """Run transition `action` for `key` at epoch time `due` (persisted with the snapshot)."""
        with self.lock:
            heapq.heappush(self._schedule, (due, next(self._seq), action, key))
            self.dirty = True

    def pop_due(self, now: float) -> list[tuple[str, str]]:
        with self.lock:
            out: list[tuple[str, str]] = []
            while self._schedule and self._schedule[0][0] <= now:
                _, _, action, key = heapq.heappop(self._schedule)
                out.append((action, key))
            if out:
                self.dirty = True
            return out

    def pending_transitions(self) -> int:
        return len(self._schedule)

    # -- persistence -----------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            for coll in self.collections.values():
                coll.clear()
            self._indexes.clear()
            self._schedule.clear()
            self.dirty = True

    def dump(self) -> str:
        with self.lock:
            return json.dumps(
                {
                    "version": 1,
                    "collections": self.collections,
                    "schedule": [[due, action, key] for due, _, action, key in sorted(self._schedule)],
                },
                separators=(",", ":"),
            )

    def load(self, text: str) -> None:
        data = json.loads(text)
        with self.lock:
            self.reset()
            for name, records in data.get("collections", {}).items():
                if name in self.collections:
                    self.collections[name] = records
                    for key, record in records.items():
                        self._index(key, record)
            for due, action, key in data.get("schedule", []):
                heapq.heappush(self._schedule, (float(due), next(self._seq), str(action), str(key)))
            self.dirty = False


class Snapshotter:
    """Writes `State` to `<data-dir>/state.json` atomically (temp file + rename) and reads it back on start."""

    def __init__(self, state: State, path: Path) -> None:
        self.state = state
        self.path = path

    def load(self) -> bool:
        if not self.path.exists():
            return False
        try:
            self.state.load(self.path.read_text())
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable snapshot %s: %s", self.path, exc)
            return False
        return True

    def save(self) -> None:
        text = self.state.dump()
        self.state.dirty = False
        self.write(text)

    def write(self, text: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)


ActionFn = Callable[[str], None]
