"""ARM's token buckets per subscription, principal and kind (reads / writes / deletes).

Refill rates are per service second, so they follow the clock scale like every other duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from emulator.core.clock import Clock

KINDS = {"read": "reads", "poll": "reads", "write": "writes", "delete": "deletes"}


@dataclass
class Bucket:
    tokens: float
    updated: float


class Throttle:
    def __init__(self, clock: Clock, config: dict[str, Any]) -> None:
        self.clock = clock
        self.config = config
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def take(self, subscription: str, principal: str, kind: str) -> tuple[bool, int, str, int]:
        """Take one token. Returns (allowed, remaining, family, retry_after_real_seconds)."""
        family = KINDS.get(kind, "reads")
        cfg = self.config["throttle"]
        burst = float(cfg[f"{family}_burst"])
        rate = float(cfg[f"{family}_per_s"]) / max(self.clock.scale, 1e-9)
        now = self.clock.now()
        k = (subscription.lower(), principal, family)
        bucket = self._buckets.get(k)
        if bucket is None:
            bucket = self._buckets[k] = Bucket(tokens=burst, updated=now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if not cfg.get("enabled", True):
            return True, int(bucket.tokens), family, 0
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True, int(bucket.tokens), family, 0
        wait = (1 - bucket.tokens) / rate if rate > 0 else 60.0
        return False, 0, family, max(1, math.ceil(wait))
