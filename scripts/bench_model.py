"""The benchmark's pure computations: the lower bound, the ideal curve, percentiles and per-server figures.

No I/O here, so `tests/bench/` can check every formula in milliseconds. All results are in real (wall) seconds:
the emulator's durations and refill rates are in service seconds and `clock_scale` maps them to wall time
(`emulator/core/clock.py`: a duration takes `d * scale` real seconds; `emulator/throttle.py`: a bucket refills at
`per_s / scale` tokens per real second).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# The least ARM traffic of the flow for one server that ends Protected (see docs/PERFORMANCE.md):
# reads: GET server, GET extension-routing list, GET backup instance (ProtectionConfigured);
# writes: POST validateForBackup, PUT backupInstance; polls: one operationStatus GET per async operation.
MIN_REQUESTS_PER_SERVER: dict[str, int] = {"read": 3, "write": 2, "poll": 2}
WRITES_PER_SERVER = MIN_REQUESTS_PER_SERVER["write"]
READS_PER_SERVER = MIN_REQUESTS_PER_SERVER["read"] + MIN_REQUESTS_PER_SERVER["poll"]  # polls use the reads bucket


@dataclass(frozen=True)
class Params:
    """The emulator parameters that bound the makespan, in the emulator's own units (service seconds)."""

    clock_scale: float
    writes_burst: float
    writes_per_s: float
    server_create_s: float
    validate_s: float
    instance_create_s: float
    protection_configure_s: float
    throttle_enabled: bool = True
    reads_burst: float = 250.0
    reads_per_s: float = 25.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Params:
        """From the emulator's `GET /_emulator/config` (so the bound uses exactly what the emulator ran with)."""
        latency = config["latency_s"]
        throttle = config["throttle"]
        return cls(
            clock_scale=float(config["clock_scale"]),
            writes_burst=float(throttle["writes_burst"]),
            writes_per_s=float(throttle["writes_per_s"]),
            server_create_s=float(latency["server_create"]),
            validate_s=float(latency["validate"]),
            instance_create_s=float(latency["instance_create"]),
            protection_configure_s=float(latency["protection_configure"]),
            throttle_enabled=bool(throttle.get("enabled", True)),
            reads_burst=float(throttle.get("reads_burst", 250)),
            reads_per_s=float(throttle.get("reads_per_s", 25)),
        )

    def real(self, service_seconds: float) -> float:
        return max(0.0, service_seconds * self.clock_scale)

    @property
    def write_rate(self) -> float:
        """Refill of the app's write bucket in tokens per real second (infinite when throttling is off)."""
        if not self.throttle_enabled:
            return math.inf
        return self.writes_per_s / max(self.clock_scale, 1e-9)

    @property
    def read_rate(self) -> float:
        """Refill of the app's reads bucket (reads and status polls) in tokens per real second."""
        if not self.throttle_enabled:
            return math.inf
        return self.reads_per_s / max(self.clock_scale, 1e-9)

    @property
    def chain_s(self) -> float:
        """One server alone: Ready, validation, instance creation, configuration (real seconds)."""
        return self.real(self.server_create_s + self.validate_s + self.instance_create_s + self.protection_configure_s)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "write_rate_real_per_s": self.write_rate, "chain_real_s": self.chain_s}


def _tokens_wait(k: int, burst: float, rate: float) -> float:
    """Earliest time (after the bucket starts full) at which the k-th write (1-based) can be admitted."""
    if rate == math.inf:
        return 0.0
    return max(0.0, k - burst) / rate


def ideal_finish_times(n: int, p: Params) -> list[float]:
    """When each server would reach ProtectionConfigured in the best schedule, all created at t = 0.

    Every server is Ready at Ls. The app's writes bucket (burst B, refill r) starts full. No schedule can admit
    its j-th write before (j - B)/r after Ls, and server k's creation cannot precede its validation plus Lv; the
    schedule "all N validations first, each creation as soon as its validation ended and a token is free" meets
    both, so its last finish equals `lower_bound` (unless the reads bucket binds, which the defaults never do).
    Server k (1-based, in order of validation) is created at
        c_k = Ls + max(w(k) + Lv, w(N + k))        with w(j) = max(0, j - B) / r
    and is protected at c_k + Lc + Lp.
    """
    ls, lv = p.real(p.server_create_s), p.real(p.validate_s)
    tail = p.real(p.instance_create_s + p.protection_configure_s)
    burst, rate = p.writes_burst, p.write_rate
    return [
        ls + max(_tokens_wait(k, burst, rate) + lv, _tokens_wait(n + k, burst, rate)) + tail for k in range(1, n + 1)
    ]


def lower_bound(n: int, p: Params, creation_spread_s: float = 0.0) -> float:
    """The least makespan (first server created -> last server ProtectionConfigured) the parameters allow.

        LB = max( Ls + max((N - B)+/r + Lv, (2N - B)+/r) + Lc + Lp,      the app's write bucket
                  Ls + (5N - Br)+/rr,                                     the app's reads bucket (5 reads after Ready)
                  spread + Ls + Lv + Lc + Lp )                            the last-created server alone

    `creation_spread_s` is the measured time between the first and the last server creation (the second term
    keeps the bound honest when creating the estate itself took a while). The poll timer adds nothing to a strict
    bound (a tick can coincide with each completion); it is part of the measured gap (at most 3 periods).
    """
    if n <= 0:
        return 0.0
    burst, rate = p.writes_burst, p.write_rate
    ls, lv = p.real(p.server_create_s), p.real(p.validate_s)
    tail = p.real(p.instance_create_s + p.protection_configure_s)
    writes = ls + max(_tokens_wait(n, burst, rate) + lv, _tokens_wait(2 * n, burst, rate)) + tail
    reads = ls + _tokens_wait(READS_PER_SERVER * n, p.reads_burst, p.read_rate)
    return max(writes, reads, creation_spread_s + p.chain_s)


def scale_for_target(n: int, p: Params, target_s: float) -> float:
    """The clock scale at which the lower bound for `n` servers is `target_s` (the bound is linear in the scale)."""
    at_one = lower_bound(n, Params(**{**asdict(p), "clock_scale": 1.0}))
    return target_s / at_one if at_one > 0 else 1.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default `linear` method); NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * pct / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def per_server(counts: Mapping[str, int], servers: int) -> dict[str, float]:
    """Request counts divided by the number of protected servers, with the total."""
    if servers <= 0:
        return {}
    out = {kind: round(counts.get(kind, 0) / servers, 3) for kind in ("read", "write", "poll", "delete", "token")}
    out["arm_total"] = round(sum(counts.get(kind, 0) for kind in ("read", "write", "poll", "delete")) / servers, 3)
    return out


def excess_over_minimum(per_server_counts: Mapping[str, float]) -> float:
    """ARM requests per server relative to the flow's minimum (1.0 = exactly the minimum)."""
    minimum = sum(MIN_REQUESTS_PER_SERVER.values())
    total = sum(float(per_server_counts.get(kind, 0.0)) for kind in MIN_REQUESTS_PER_SERVER)
    return total / minimum


def growth_exponent(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of log(value) against log(N): 1.0 is linear growth; NaN with fewer than two points."""
    usable = [(math.log(n), math.log(v)) for n, v in points if n > 0 and v > 0]
    if len(usable) < 2:
        return math.nan
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    sxx = sum((x - mean_x) ** 2 for x, _ in usable)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in usable)
    return sxy / sxx if sxx else math.nan


def step_curve(finish_offsets: Sequence[float]) -> tuple[list[float], list[int]]:
    """(time, servers done by then) points of a cumulative count, for the plot."""
    times = sorted(finish_offsets)
    return [0.0, *times], [0, *range(1, len(times) + 1)]
