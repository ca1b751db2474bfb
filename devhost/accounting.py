"""Per-function invocation counts and wall time, for the admin API, benchmarks and the shutdown summary."""

from __future__ import annotations

import resource
import sys
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class _Tally:
    count: int = 0
    failures: int = 0
    total_seconds: float = 0.0


def peak_rss_bytes() -> int:
    """The process's peak resident set size; Linux reports kilobytes, macOS bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Accounting:
    """Thread-safe tallies: invocations finish on worker threads and on the event loop at once."""

    def __init__(self, function_names: list[str]) -> None:
        self._lock = threading.Lock()
        self._tallies = {name: _Tally() for name in function_names}

    def record(self, name: str, seconds: float, *, succeeded: bool) -> None:
        with self._lock:
            tally = self._tallies.setdefault(name, _Tally())
            tally.count += 1
            tally.failures += 0 if succeeded else 1
            tally.total_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            functions = {
                name: {
                    "count": t.count,
                    "failures": t.failures,
                    "total_seconds": round(t.total_seconds, 6),
                    "mean_seconds": round(t.total_seconds / t.count, 6) if t.count else 0.0,
                }
                for name, t in sorted(self._tallies.items())
            }
        return {"functions": functions, "peak_rss_bytes": peak_rss_bytes()}
