"""The App Service managed identity protocol, and azure-identity against it."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from scripts.stack import Child
from tests.emulator.helpers import RG_VERSION, Arm, new_sub, read_jsonl, rg_path


def _get(info: dict[str, str], headers: dict[str, str] | None = None, **params: str) -> requests.Response:
    return requests.get(
        info["identity_endpoint"],
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com", **params},
        headers={"X-IDENTITY-HEADER": info["identity_header"]} if headers is None else headers,
        timeout=10,
    )


def test_token_shape(emulator: Child) -> None:
    resp = _get(emulator.info)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) >= {"access_token", "expires_on", "resource", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.azure.com"
    assert int(body["expires_on"]) > time.time() + 3600
    assert body["access_token"].count(".") == 2


def test_accepted_resources(emulator: Child) -> None:
    for resource in ("https://management.azure.com/", "https://management.core.windows.net/", emulator.info["arm"]):
        assert _get(emulator.info, resource=resource).status_code == 200, resource
    assert _get(emulator.info, resource="https://vault.azure.net").status_code == 400


def test_identity_header_required(emulator: Child) -> None:
    assert _get(emulator.info, headers={}).status_code == 401
    assert _get(emulator.info, headers={"X-IDENTITY-HEADER": "wrong"}).status_code == 401


def test_user_assigned_identities_are_stable(emulator: Child) -> None:
    arm = Arm(emulator.info)
    a1 = Arm(
        emulator.info,
        token=_get(emulator.info, client_id="11111111-1111-1111-1111-111111111111").json()["access_token"],
    )
    a2 = Arm(
        emulator.info,
        token=_get(emulator.info, client_id="11111111-1111-1111-1111-111111111111").json()["access_token"],
    )
    for client in (a1, a2):
        assert client.call("PUT", rg_path(new_sub(), "ua"), {"location": "x"}, RG_VERSION).status_code == 201
    by_principal = arm.admin("GET", "stats").json()["requests_by_principal"]
    assert emulator.info["app_principal_id"] in by_principal
    assert (
        len([p for p, c in by_principal.items() if c.get("write", 0) >= 2 and p != emulator.info["app_principal_id"]])
        >= 1
    )


def test_managed_identity_credential_gets_a_token(emulator: Child, emulator_env: dict[str, str]) -> None:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert token.expires_on > time.time() + 300
    resp = Arm(emulator.info, token=token.token).call("GET", rg_path(new_sub(), "x"), api_version=RG_VERSION)
    assert resp.status_code == 404
    default = DefaultAzureCredential(exclude_cli_credential=True, exclude_powershell_credential=True)
    assert default.get_token("https://management.azure.com/.default").token


def test_traffic_log_redacts_secrets(emulator: Child, session_dir: Path) -> None:
    _get(emulator.info)
    Arm(emulator.info).call("GET", rg_path(new_sub(), "x"), api_version=RG_VERSION)
    entries = read_jsonl(session_dir / "traffic.jsonl")
    tokens = [e for e in entries if "/msi/token" in e["request"]["url"] and e["response"]["status"] == 200]
    assert tokens and all(e["response"]["body"]["access_token"] == "REDACTED" for e in tokens)
    assert all(e["request"]["headers"].get("X-IDENTITY-HEADER", "REDACTED") == "REDACTED" for e in tokens)
    arm_calls = [e for e in entries if e["request"]["url"].startswith(emulator.info["arm"])]
    assert arm_calls and all(e["request"]["headers"].get("Authorization", "REDACTED") == "REDACTED" for e in arm_calls)
    assert all(set(e) == {"request", "response"} for e in entries)
