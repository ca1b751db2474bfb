"""ARM front-door behaviour: auth, api-versions, ids, routing, request ids, resource groups."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import DP_VERSION, PG_VERSION, RG_VERSION, Arm, new_sub, rg_path, server_path, vault_path


def test_missing_token_is_401_authentication_failed(arm: Arm) -> None:
    resp = arm.session.get(
        f"{arm.base}{rg_path(new_sub(), 'x')}", params={"api-version": RG_VERSION}, verify=arm.info["ca_bundle"]
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")


def test_foreign_token_is_401_invalid_authentication_token(arm: Arm) -> None:
    bad = Arm(arm.info, token="eyJhbGciOiJIUzI1NiJ9.eyJvaWQiOiJ4In0.c2lnbmF0dXJl")
    resp = bad.call("GET", rg_path(new_sub(), "x"), api_version=RG_VERSION)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_expired_token_is_401_expired(arm: Arm) -> None:
    minted = arm.admin("POST", "token", {"principal_id": new_sub(), "lifetime_s": -60}).json()
    resp = Arm(arm.info, token=minted["access_token"]).call("GET", rg_path(new_sub(), "x"), api_version=RG_VERSION)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_admin_token_acts_as_a_user(arm: Arm) -> None:
    user = new_sub()
    minted = arm.admin("POST", "token", {"principal_id": user, "name": "Dev User"}).json()
    sub = new_sub()
    resp = Arm(arm.info, token=minted["access_token"]).call("PUT", rg_path(sub, "u"), {"location": "x"}, RG_VERSION)
    assert resp.status_code == 201
    assert arm.admin("GET", "stats").json()["requests_by_principal"][user]["write"] >= 1


def test_missing_api_version(arm: Arm) -> None:
    resp = arm.call("GET", rg_path(new_sub(), "x"))
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "MissingApiVersionParameter"


@pytest.mark.parametrize(
    ("path", "good"),
    [
        (rg_path(new_sub(), "x"), ["2021-04-01", "2025-04-01"]),
        (server_path(new_sub(), "x", "s"), ["2022-12-01", "2023-06-01", "2024-08-01", "2025-08-01", "2026-10-01"]),
        (vault_path(new_sub(), "x", "v"), ["2021-01-01", "2025-09-01", "2026-06-01"]),
        (f"/subscriptions/{new_sub()}/providers/Microsoft.Authorization/roleAssignments", ["2022-04-01"]),
    ],
)
def test_api_versions(arm: Arm, path: str, good: list[str]) -> None:
    for version in good:
        assert arm.call("GET", path, api_version=version).status_code in (200, 404), version
    resp = arm.call("GET", path, api_version="2099-01-01")
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert "2099-01-01" in error["message"]


def test_malformed_subscription_id(arm: Arm) -> None:
    resp = arm.call("GET", rg_path("not-a-guid", "x"), api_version=RG_VERSION)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "InvalidSubscriptionId"


def test_unknown_resource_type(arm: Arm) -> None:
    resp = arm.call(
        "GET", f"{rg_path(new_sub(), 'x')}/providers/Microsoft.DataProtection/nope/y", api_version=DP_VERSION
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "InvalidResourceType"


def test_tracing_and_ratelimit_headers(arm: Arm) -> None:
    resp = arm.call(
        "GET", rg_path(new_sub(), "x"), api_version=RG_VERSION, headers={"x-ms-correlation-request-id": "corr-1"}
    )
    assert resp.headers["x-ms-correlation-request-id"] == "corr-1"
    assert resp.headers["x-ms-request-id"]
    assert int(resp.headers["x-ms-ratelimit-remaining-subscription-reads"]) >= 0


def test_resource_group_lifecycle_and_case_insensitive_paths(arm: Arm) -> None:
    sub = new_sub()
    created = arm.call("PUT", rg_path(sub, "MyGroup"), {"location": "westeurope", "tags": {"a": "b"}}, RG_VERSION)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    assert arm.call("PUT", rg_path(sub, "MyGroup"), {"location": "westeurope"}, RG_VERSION).status_code == 200
    lower = arm.call("GET", f"/subscriptions/{sub}/resourcegroups/mygroup", api_version=RG_VERSION)
    assert lower.status_code == 200
    assert lower.json()["name"] == "MyGroup"
    missing_location = arm.call("PUT", rg_path(sub, "g2"), {}, RG_VERSION)
    assert missing_location.status_code == 400
    assert arm.call("DELETE", rg_path(sub, "MyGroup"), api_version=RG_VERSION).status_code == 200
    gone = arm.call("GET", rg_path(sub, "MyGroup"), api_version=RG_VERSION)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ResourceGroupNotFound"
    server = arm.call("PUT", server_path(sub, "MyGroup", "srv1"), {"location": "westeurope"}, PG_VERSION)
    assert server.status_code == 404
    assert server.json()["error"] == {
        "code": "ResourceGroupNotFound",
        "message": "Resource group 'MyGroup' could not be found.",
    }


def test_invalid_json_body(arm: Arm) -> None:
    resp = arm.call(
        "PUT",
        rg_path(new_sub(), "x"),
        api_version=RG_VERSION,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "InvalidRequestContent"
