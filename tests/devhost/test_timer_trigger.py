"""The timer of a running dev host: a `%Setting%` schedule, run_on_startup, and never two runs at once.

The sample timer is scheduled every second but each run takes 1.5 s, so occurrences must be skipped.
"""

from __future__ import annotations

import pytest

from scripts.stack import wait_until
from tests.devhost.conftest import DevHost

pytestmark = pytest.mark.integration


def test_timer_runs_at_startup_then_on_schedule_without_overlap(devhost: DevHost) -> None:
    wait_until(lambda: len(devhost.records("tick")) >= 6, timeout=20, what="three timer runs")
    rows = devhost.records("tick")
    log = devhost.log()
    assert "Reason='Timer fired at startup (run_on_startup)'" in log
    assert "Reason='Timer fired at 20" in log  # a scheduled occurrence, with its due time
    phases = [r["phase"] for r in rows]
    complete = len(phases) - len(phases) % 2
    assert phases[:complete] == ["start", "end"] * (complete // 2)  # strictly alternating: no overlap
    for previous_end, next_start in zip(rows[1:complete:2], rows[2:complete:2], strict=False):
        assert next_start["at"] >= previous_end["at"]
    assert all(r["past_due"] is False for r in rows if r["phase"] == "start")
    assert "skipped" in log
