"""Token buckets per subscription and principal: remaining headers, 429 + Retry-After + CloudError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import Child
from tests.emulator.helpers import RG_VERSION, Arm, new_sub, rg_path, start_special


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    """A private emulator on a real-time clock with tiny buckets (refill 1 token per 10 s)."""
    child = start_special(
        tmp_path_factory.mktemp("throttle"),
        {
            "clock_scale": 1.0,
            "throttle": {
                "reads_burst": 3,
                "reads_per_s": 0.1,
                "writes_burst": 2,
                "writes_per_s": 0.1,
                "deletes_burst": 2,
                "deletes_per_s": 0.1,
            },
        },
    )
    try:
        yield child
    finally:
        child.stop()


def test_writes_are_throttled_with_retry_after(tight: Child) -> None:
    arm = Arm(tight.info)
    sub = new_sub()
    remaining = []
    for i in range(2):
        resp = arm.call("PUT", rg_path(sub, f"g{i}"), {"location": "westeurope"}, RG_VERSION)
        assert resp.status_code == 201
        remaining.append(int(resp.headers["x-ms-ratelimit-remaining-subscription-writes"]))
    assert remaining == [1, 0]
    resp = arm.call("PUT", rg_path(sub, "g3"), {"location": "westeurope"}, RG_VERSION)
    assert resp.status_code == 429
    retry = int(resp.headers["Retry-After"])
    assert 1 <= retry <= 10
    error = resp.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert sub in error["message"]
    # a POST counts as a write too
    post = arm.call(
        "POST",
        f"{rg_path(sub, 'g0')}/providers/Microsoft.DataProtection/backupVaults/v/validateForBackup",
        {},
        "2026-06-01",
    )
    assert post.status_code == 429
    # reads have their own bucket
    assert arm.call("GET", rg_path(sub, "g0"), api_version=RG_VERSION).status_code == 200
    stats = arm.admin("GET", "stats").json()
    assert stats["throttled_429"] >= 2
    assert stats["throttled_by_kind"]["writes"] >= 2


def test_buckets_are_per_subscription_and_per_principal(tight: Child) -> None:
    arm = Arm(tight.info)
    sub = new_sub()
    for i in range(3):
        arm.call("DELETE", rg_path(sub, f"x{i}"), api_version=RG_VERSION)
    assert arm.call("DELETE", rg_path(sub, "x"), api_version=RG_VERSION).status_code == 429
    assert arm.call("DELETE", rg_path(new_sub(), "x"), api_version=RG_VERSION).status_code == 404
    other = arm.admin("POST", "token", {"principal_id": new_sub()}).json()["access_token"]
    assert Arm(tight.info, token=other).call("DELETE", rg_path(sub, "x"), api_version=RG_VERSION).status_code == 404


def test_operation_status_polls_count_as_reads(tight: Child, tmp_path: Path) -> None:
    arm = Arm(tight.info)
    sub = new_sub()
    op = f"/subscriptions/{sub}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/abc="
    codes = [arm.call("GET", op, api_version="2026-06-01").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    assert arm.admin("GET", "stats").json()["requests"]["poll"] >= 4


def test_live_config_patch_disables_throttling(tight: Child) -> None:
    arm = Arm(tight.info)
    sub = new_sub()
    for i in range(3):
        arm.call("GET", rg_path(sub, f"y{i}"), api_version=RG_VERSION)
    assert arm.call("GET", rg_path(sub, "y"), api_version=RG_VERSION).status_code == 429
    assert arm.admin("PATCH", "config", {"throttle": {"enabled": False}}).status_code == 200
    try:
        assert arm.call("GET", rg_path(sub, "y"), api_version=RG_VERSION).status_code == 404
    finally:
        arm.admin("PATCH", "config", {"throttle": {"enabled": True}})
