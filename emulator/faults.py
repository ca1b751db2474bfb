"""Fault rules matched by method and a regex on the lower-cased path, fired by a seeded RNG.

Kinds: `429`, `500`, `503` (CloudError responses), `reset` (TCP reset, no response), `slow` (delay, then the real
response), `operation_failed` (the async operation started by the request ends Failed with the chosen error) and
`foreign_origin` (async/paging headers point at another origin or at http://, for client security tests).
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any

KINDS = frozenset({"429", "500", "503", "reset", "slow", "operation_failed", "foreign_origin"})


class FaultRule:
    def __init__(self, spec: dict[str, Any]) -> None:
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
        self.spec = dict(spec)
        self.kind = kind
        self.method = str(spec.get("method", "*")).upper()
        self.path = re.compile(str(spec.get("path", ".*")))
        self.probability = float(spec.get("probability", 1.0))
        count = spec.get("count")
        self.remaining: int | None = None if count is None else int(count)
        self.fired = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.spec, "remaining": self.remaining, "fired": self.fired}


class Faults:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def set(self, specs: list[dict[str, Any]]) -> None:
        rules = [FaultRule(s) for s in specs]
        with self._lock:
            self.rules = rules

    def add(self, specs: list[dict[str, Any]]) -> None:
        rules = [FaultRule(s) for s in specs]
        with self._lock:
            self.rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first matching rule whose dice roll fires (each rule rolls once per request)."""
        lowered = path.lower()
        with self._lock:
            for rule in self.rules:
                if rule.method not in ("*", method) or rule.remaining == 0:
                    continue
                if not rule.path.search(lowered):
                    continue
                if self.rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                return rule
        return None
