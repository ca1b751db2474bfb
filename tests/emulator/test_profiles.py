"""The named profiles behave as documented when actually started."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.emulator.helpers import (
    PG_VERSION,
    RG_VERSION,
    Arm,
    new_sub,
    rg_path,
    server_body,
    server_path,
    start_special,
)


def test_realistic_profile_latencies(tmp_path: Path) -> None:
    child = start_special(tmp_path, {}, profile="realistic")
    try:
        arm = Arm(child.info)
        sub = new_sub()
        arm.call("PUT", rg_path(sub, "rg"), {"location": "westeurope"}, RG_VERSION)
        resp = arm.call("PUT", server_path(sub, "rg", "pg-profile"), server_body(), PG_VERSION)
        assert resp.status_code == 202
        assert 10 <= int(resp.headers["Retry-After"]) <= 60
        assert arm.call("GET", server_path(sub, "rg", "pg-profile"), api_version=PG_VERSION).json()["properties"][
            "state"
        ] == ("Provisioning")
        assert arm.admin("GET", "health").json()["profile"] == "realistic"
    finally:
        child.stop()


def test_chaos_profile_injects_seeded_faults(tmp_path: Path) -> None:
    child = start_special(tmp_path, {}, profile="chaos")
    try:
        arm = Arm(child.info)
        sub = new_sub()
        outcomes: dict[str, int] = {}
        for _ in range(60):
            try:
                status = str(arm.call("GET", rg_path(sub, "rg"), api_version=RG_VERSION, timeout=10).status_code)
            except requests.ConnectionError:
                status = "reset"
            outcomes[status] = outcomes.get(status, 0) + 1
        assert outcomes.get("404", 0) > 40
        assert set(outcomes) - {"404"}, outcomes  # some faults fired
        assert set(outcomes) <= {"404", "429", "500", "503", "reset"}
        assert sum(arm.admin("GET", "stats").json()["faults_injected"].values()) >= len(set(outcomes)) - 1
    finally:
        child.stop()
