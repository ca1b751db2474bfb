"""One injectable, scalable clock for every service latency, Retry-After value and refill rate.

Service durations are written in real-world seconds (a server create takes ~300 s) and the clock's `scale`
shrinks all of them together, so a test run keeps the realistic ratios while finishing in seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Wall time plus a scale factor applied to every emulated duration."""

    def __init__(self, scale: float = 1.0, now: Callable[[], float] = time.time) -> None:
        self.scale = scale
        self._now = now
        self.offset = 0.0

    def now(self) -> float:
        """Current wall time in epoch seconds (injectable for unit tests)."""
        return self._now() + self.offset

    def advance(self, service_seconds: float) -> None:
        """Jump forward (admin API): everything due within `service_seconds` of service time happens now."""
        self.offset += self.real(service_seconds)

    def real(self, service_seconds: float) -> float:
        """How many real seconds a service duration of `service_seconds` takes under the current scale."""
        return max(0.0, service_seconds * self.scale)

    def due(self, service_seconds: float) -> float:
        """Epoch time at which something that takes `service_seconds` (service time) completes."""
        return self.now() + self.real(service_seconds)

    def retry_after(self, service_seconds: float) -> int:
        """A Retry-After header value: whole real seconds, scaled, never below 1 (ARM never sends 0)."""
        return max(1, math.ceil(self.real(service_seconds)))

    @staticmethod
    def iso(epoch: float) -> str:
        """ARM's timestamp format (UTC, 7 fractional digits are not needed by any client)."""
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
