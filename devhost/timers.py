"""Timer triggers on 6-field NCRONTAB schedules, with the host's no-overlap and past-due rules.

The host never runs a timer function twice at once: an occurrence that falls due while the previous run is
still going is skipped, and the next one is computed from the time the run ended. `past_due` is reported only
when the schedule monitor is on (`use_monitor`, which the host turns off for schedules more frequent than a
minute) and the run starts more than one period late. Schedules are evaluated in UTC.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions import meta
from croniter import croniter

from devhost.invoker import Invoker, convert_input
from devhost.loader import TIMER, FunctionSpec
from devhost.settings import ConfigError

log = logging.getLogger("devhost.timers")


def validate_schedule(expression: str, *, where: str) -> str:
    """Accept only what the host accepts here: six fields, seconds first (no TimeSpan schedules)."""
    fields = expression.split()
    if len(fields) != 6 or not croniter.is_valid(expression, second_at_beginning=True):
        raise ConfigError(
            f"{where}: '{expression}' is not a 6-field NCRONTAB expression "
            "'{second} {minute} {hour} {day} {month} {day-of-week}'"
        )
    return expression


def next_occurrence(expression: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (UTC)."""
    result = croniter(expression, after, second_at_beginning=True).get_next(datetime)
    assert isinstance(result, datetime)
    return result


def period(expression: str, around: datetime) -> timedelta:
    """The gap between two consecutive occurrences near `around`: the host's measure of "late"."""
    first = next_occurrence(expression, around)
    return next_occurrence(expression, first) - first


def is_past_due(expression: str, due: datetime, started: datetime, *, use_monitor: bool) -> bool:
    gap = period(expression, due)
    monitored = use_monitor and gap >= timedelta(minutes=1)
    return monitored and started - due > gap


def timer_input(past_due: bool, last: datetime | None, upcoming: datetime) -> Any:
    """Build `TimerRequest` through the library converter from the host's JSON payload."""
    now = datetime.now(UTC)
    payload = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": upcoming.isoformat(),
            "LastUpdated": now.isoformat(),
        },
        "IsPastDue": past_due,
    }
    return convert_input(TIMER, meta.Datum(json.dumps(payload), "json"))


class TimerScheduler:
    """One thread per timer function; the run happens on that thread, so runs cannot overlap."""

    def __init__(
        self, spec: FunctionSpec, invoker: Invoker, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.spec = spec
        self.schedule = validate_schedule(str(spec.properties["schedule"]), where=f"{spec.name}.schedule")
        self._invoker = invoker
        self._now = now
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._last: datetime | None = None
        self._thread = threading.Thread(target=self._loop, name=f"devhost-timer-{spec.name}", daemon=True)

    def start(self) -> None:
        log.info("Timer %s scheduled '%s' (UTC), next at %s", self.spec.name, self.schedule, self._next())
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def run_once(self, reason: str) -> bool:
        """Run now unless a run is in progress (used by the admin API); False when it was skipped."""
        return self._fire(self._now(), reason)

    def _next(self) -> datetime:
        return next_occurrence(self.schedule, self._now())

    def _loop(self) -> None:
        if self.spec.properties.get("run_on_startup"):
            self._fire(self._now(), "Timer fired at startup (run_on_startup)")
        previous: datetime | None = None
        while not self._stop.is_set():
            # Never before the last occurrence: the sleep (monotonic) may end a hair before the wall-clock due time.
            now = self._now()
            due = next_occurrence(self.schedule, now if previous is None else max(now, previous))
            if self._stop.wait(max(0.0, (due - self._now()).total_seconds())):
                break
            self._fire(due, f"Timer fired at {due.isoformat()}")
            previous = due

    def _fire(self, due: datetime, reason: str) -> bool:
        if not self._busy.acquire(blocking=False):
            log.info("Timer %s: occurrence %s skipped, the previous run is still going", self.spec.name, due)
            return False
        try:
            started = self._now()
            past_due = is_past_due(
                self.schedule, due, started, use_monitor=bool(self.spec.properties.get("use_monitor"))
            )
            value = timer_input(past_due, self._last, next_occurrence(self.schedule, started))
            self._last = due
            self._invoker.invoke_blocking(self.spec, value, reason)
            skipped = self._count_between(due, self._now())
            if skipped:
                log.info("Timer %s: %d occurrence(s) skipped while it ran (no overlap)", self.spec.name, skipped)
            return True
        finally:
            self._busy.release()

    def _count_between(self, start: datetime, end: datetime, limit: int = 1000) -> int:
        count = 0
        cursor = next_occurrence(self.schedule, start)
        while cursor < end and count < limit:
            count += 1
            cursor = next_occurrence(self.schedule, cursor)
        return count
