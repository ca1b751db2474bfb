"""Counters behind `GET /_emulator/stats`: requests per kind and principal, 429s, faults, event deliveries."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.by_principal: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.throttled: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.status: Counter[str] = Counter()

    def request(self, kind: str, principal: str) -> None:
        self.requests[kind] += 1
        self.by_principal[principal or "anonymous"][kind] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_by_principal": {p: dict(c) for p, c in self.by_principal.items()},
            "throttled_429": sum(self.throttled.values()),
            "throttled_by_kind": dict(self.throttled),
            "faults_injected": dict(self.faults),
            "events": dict(self.events),
            "responses_by_status": dict(self.status),
        }
