"""Admin API, profiles and knobs."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from emulator import config
from tests.emulator.helpers import Arm, World


def test_admin_requires_secret_header(arm: Arm) -> None:
    resp = requests.get(f"{arm.info['admin']}/health", verify=arm.info["ca_bundle"], timeout=10)
    assert resp.status_code == 401
    assert arm.admin("GET", "health").json()["status"] == "ok"


def test_banner_contract(arm: Arm) -> None:
    info = arm.info
    assert info["arm"].startswith("https://127.0.0.1:")
    assert info["identity_endpoint"].startswith("http://127.0.0.1:") and info["identity_endpoint"].endswith(
        "/msi/token"
    )
    assert info["admin"] == info["arm"] + "/_emulator"
    for key in ("ca_bundle", "identity_header", "tenant_id", "app_principal_id", "subscription_ids"):
        assert info[key]


def test_state_and_stats(arm: Arm) -> None:
    world = World(arm)
    resp = world.put_instance("bi1")
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    state = arm.admin("GET", "state").json()
    mine = [i for i in state["instances"] if i["properties"]["dataSourceInfo"]["resourceID"] == world.server_id]
    assert len(mine) == 1
    assert any(s["id"] == world.server_id for s in state["servers"])
    assert any(r["properties"]["principalId"] == world.vault_principal for r in state["role_assignments"])
    stats = arm.admin("GET", "stats").json()
    assert stats["requests"]["write"] > 0 and stats["requests"]["poll"] > 0 and stats["requests"]["token"] > 0
    assert "pending" in stats["events"]
    assert arm.admin("GET", "events").json()["pending"] == 0


def test_profiles_are_documented_and_load() -> None:
    names = config.profile_names()
    assert {"realistic", "fast", "bench", "chaos"} <= set(names)
    for name in names:
        cfg = config.load(name)
        assert cfg["description"]
        assert cfg["clock_scale"] > 0
    fast = config.load("fast")
    assert fast["latency_s"]["server_create"] * fast["clock_scale"] <= 1.5
    assert fast["role_propagation_s"] * fast["clock_scale"] <= 1.5
    realistic = config.load("realistic")
    assert realistic["latency_s"]["server_create"] == 300 and realistic["role_propagation_s"] == 300
    bench = config.load("bench")
    scale, writes_per_real_s = bench["clock_scale"], bench["throttle"]["writes_per_s"] / bench["clock_scale"]
    latency = bench["latency_s"]
    # The 1000-server lower bound (docs/PERFORMANCE.md): servers Ready, the app's writes, create and configure.
    writes_s = (2 * 1000 - bench["throttle"]["writes_burst"]) / writes_per_real_s
    bound = (
        scale * latency["server_create"]
        + writes_s
        + scale * (latency["instance_create"] + latency["protection_configure"])
    )
    assert 40 <= bound <= 90
    assert config.load("chaos")["faults"]


def test_config_file_is_merged_over_profile(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"latency_s": {"validate": 1}, "page_size": 7}))
    cfg = config.load("fast", path)
    assert cfg["latency_s"]["validate"] == 1 and cfg["latency_s"]["server_create"] == 300
    assert cfg["page_size"] == 7


def test_live_config_patch(arm: Arm) -> None:
    before = arm.admin("GET", "config").json()
    patched = arm.admin("PATCH", "config", {"status_spelling": "Inprogress"}).json()
    try:
        assert patched["status_spelling"] == "Inprogress"
        assert patched["clock_scale"] == before["clock_scale"]
    finally:
        arm.admin("PATCH", "config", {"status_spelling": before["status_spelling"]})
