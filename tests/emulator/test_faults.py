"""Each fault kind shows its exact status, headers and body; rules match by method and path regex."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.emulator.helpers import DP_VERSION, RG_VERSION, Arm, World, new_sub, rg_path


@pytest.fixture
def faulty(arm: Arm) -> Iterator[Arm]:
    """The shared emulator with every fault rule removed afterwards."""
    arm.admin("DELETE", "faults")
    try:
        yield arm
    finally:
        arm.admin("DELETE", "faults")


def _rule(arm: Arm, **rule: object) -> None:
    resp = arm.admin("POST", "faults", [rule])
    assert resp.status_code == 200, resp.text


def test_429_fault(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="GET", path=f"^/subscriptions/{sub}/resourcegroups/", kind="429", count=1)
    resp = faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert resp.headers["x-ms-request-id"]
    # count=1: the next call passes through to the real handler
    assert faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION).status_code == 404


def test_500_fault_with_custom_error(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="*", path=sub, kind="500", error_code="InternalServerError", error_message="boom")
    resp = faulty.call("PUT", rg_path(sub, "x"), {"location": "westeurope"}, RG_VERSION)
    assert resp.status_code == 500
    assert resp.json() == {"error": {"code": "InternalServerError", "message": "boom"}}


def test_503_fault_has_retry_after(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="GET", path=sub, kind="503")
    resp = faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "ServiceUnavailable"
    assert int(resp.headers["Retry-After"]) >= 1


def test_reset_fault_drops_the_connection(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="GET", path=sub, kind="reset", count=1)
    with pytest.raises(requests.ConnectionError):
        faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION)
    assert faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION).status_code == 404


def test_slow_fault_delays_then_answers(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="GET", path=sub, kind="slow", delay_s=0.5)
    started = time.monotonic()
    resp = faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION)
    assert time.monotonic() - started >= 0.5
    assert resp.status_code == 404


def test_operation_failed_fault_fails_the_async_operation(faulty: Arm) -> None:
    world = World(faulty)
    _rule(
        faulty,
        method="POST",
        path=f"/subscriptions/{world.sub}/.*/validateforbackup$",
        kind="operation_failed",
        error_code="UserErrorSomething",
        error_message="chosen failure",
    )
    resp = world.validate()
    assert resp.status_code == 202
    status = faulty.poll_status(resp.headers["Azure-AsyncOperation"])
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "UserErrorSomething"
    assert status["error"]["message"] == "chosen failure"
    assert status["error"]["additionalInfo"][0]["info"]["code"] == "UserErrorSomething"


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://127.0.0.1:1"])
def test_foreign_origin_fault_points_async_headers_elsewhere(faulty: Arm, origin: str) -> None:
    world = World(faulty)
    _rule(faulty, method="POST", path=f"/subscriptions/{world.sub}/", kind="foreign_origin", origin=origin)
    resp = world.validate()
    assert resp.status_code == 202
    assert resp.headers["Azure-AsyncOperation"].startswith(origin + "/subscriptions/")
    assert resp.headers["Location"].startswith(origin + "/subscriptions/")


def test_probability_zero_never_fires_and_stats_count_faults(faulty: Arm) -> None:
    sub = new_sub()
    _rule(faulty, method="GET", path=sub, kind="500", probability=0.0)
    assert faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION).status_code == 404
    before = faulty.admin("GET", "stats").json()["faults_injected"].get("503", 0)
    _rule(faulty, method="GET", path=sub, kind="503", count=2)
    for _ in range(3):
        faulty.call("GET", rg_path(sub, "x"), api_version=RG_VERSION)
    assert faulty.admin("GET", "stats").json()["faults_injected"]["503"] == before + 2


def test_unknown_fault_kind_is_rejected(faulty: Arm) -> None:
    resp = faulty.admin("POST", "faults", [{"method": "GET", "path": ".*", "kind": "teapot"}])
    assert resp.status_code == 400
    assert DP_VERSION  # keep the import used for readers of this module
