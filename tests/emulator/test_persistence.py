"""State survives a clean restart (SIGTERM -> snapshot -> reload), and so do the CA and tokens."""

from __future__ import annotations

from pathlib import Path

from scripts.stack import start_emulator
from tests.emulator.helpers import PG_VERSION, RG_VERSION, Arm, create_server, new_sub, rg_path


def test_restart_keeps_state_ca_and_tokens(tmp_path: Path) -> None:
    first = start_emulator(tmp_path / "logs", tmp_path / "data", profile="fast")
    try:
        arm = Arm(first.info)
        sub = new_sub()
        assert arm.call("PUT", rg_path(sub, "keep"), {"location": "westeurope"}, RG_VERSION).status_code == 201
        server = create_server(arm, sub, "keep", "pg-keep")
        token = arm.token
        ca = Path(first.info["ca_bundle"]).read_bytes()
        server_pem = (tmp_path / "data" / "server.pem").read_bytes()
    finally:
        first.stop()
    assert first.process.returncode == 0
    assert (tmp_path / "data" / "state.json").exists()

    second = start_emulator(tmp_path / "logs", tmp_path / "data", profile="fast")
    try:
        assert Path(second.info["ca_bundle"]).read_bytes() == ca
        assert (tmp_path / "data" / "server.pem").read_bytes() == server_pem
        assert second.info["identity_header"] == first.info["identity_header"]
        info = {**second.info}
        again = Arm(info, token=token)  # a token issued before the restart is still valid
        got = again.call("GET", server, api_version=PG_VERSION)
        assert got.status_code == 200
        assert got.json()["properties"]["state"] == "Ready"
    finally:
        second.stop()
