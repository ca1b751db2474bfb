"""Microsoft.DBforPostgreSQL/flexibleServers: async create/delete, states, paging, PATCH, children."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import (
    PG_VERSION,
    RG_VERSION,
    Arm,
    create_server,
    new_sub,
    rg_path,
    server_body,
    server_path,
)


@pytest.fixture
def group(arm: Arm) -> tuple[str, str]:
    sub = new_sub()
    assert arm.call("PUT", rg_path(sub, "pg"), {"location": "westeurope"}, RG_VERSION).status_code == 201
    return sub, "pg"


def test_create_is_async_provisioning_then_ready(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    path = server_path(sub, rg, "pg1")
    resp = arm.call("PUT", path, server_body(), PG_VERSION)
    assert resp.status_code == 202
    assert resp.text == ""
    status_url = resp.headers["Azure-AsyncOperation"]
    assert f"/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/locations/westeurope/azureAsyncOperation/" in (
        status_url
    )
    assert f"api-version={PG_VERSION}" in status_url
    assert "/operationResults/" in resp.headers["Location"]
    assert int(resp.headers["Retry-After"]) >= 1
    body = arm.call("GET", path, api_version=PG_VERSION).json()
    assert body["properties"]["state"] == "Provisioning"
    assert "administratorLoginPassword" not in body["properties"]
    assert body["properties"]["replicationRole"] == "Primary"
    in_progress = arm.call("GET", status_url).json()
    assert in_progress["status"].lower() == "inprogress"
    assert arm.call("GET", resp.headers["Location"]).status_code == 202
    arm.advance(400)
    assert arm.poll_status(status_url)["status"] == "Succeeded"
    ready = arm.call("GET", path, api_version=PG_VERSION).json()
    assert ready["properties"]["state"] == "Ready"
    assert ready["location"] == "westeurope"
    assert ready["type"] == "Microsoft.DBforPostgreSQL/flexibleServers"
    final = arm.call("GET", resp.headers["Location"])
    assert final.status_code == 200
    assert final.json()["id"] == path


def test_list_is_paged_with_next_link(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    for i in range(5):
        create_server(arm, sub, rg, f"srv{i}", ready=False)
    arm.admin("PATCH", "config", {"page_size": 2})
    try:
        names: list[str] = []
        url: str | None = f"{arm.base}/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/flexibleServers"
        first = True
        pages = 0
        while url:
            page = arm.call("GET", url, api_version=PG_VERSION if first else None).json()
            first = False
            pages += 1
            names += [s["name"] for s in page["value"]]
            url = page.get("nextLink")
        assert names == [f"srv{i}" for i in range(5)]
        assert pages == 3
        by_rg = arm.call(
            "GET", f"{rg_path(sub, rg)}/providers/Microsoft.DBforPostgreSQL/flexibleServers", api_version=PG_VERSION
        ).json()
        assert len(by_rg["value"]) == 2 and by_rg["nextLink"].startswith(arm.base)
    finally:
        arm.admin("PATCH", "config", {"page_size": 100})


def test_patch_tags_and_children(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    path = create_server(arm, sub, rg, "pg2")
    patch = arm.call("PATCH", path, {"tags": {"autoprotect": "off"}}, PG_VERSION)
    assert patch.status_code == 202
    arm.advance(60)
    arm.poll_status(patch.headers["Azure-AsyncOperation"])
    assert arm.call("GET", path, api_version=PG_VERSION).json()["tags"] == {"autoprotect": "off"}
    rule = arm.call(
        "PUT",
        f"{path}/firewallRules/all",
        {"properties": {"startIpAddress": "10.0.0.1", "endIpAddress": "10.0.0.9"}},
        PG_VERSION,
    )
    assert rule.status_code == 202
    got = arm.call("GET", f"{path}/firewallRules/all", api_version=PG_VERSION).json()
    assert got["type"] == "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules"
    missing_parent = arm.call("PUT", f"{server_path(sub, rg, 'nope')}/databases/d", {"properties": {}}, PG_VERSION)
    assert missing_parent.status_code == 404
    assert missing_parent.json()["error"]["code"] == "ParentResourceNotFound"


def test_delete_is_async_then_not_found(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    path = create_server(arm, sub, rg, "pg3")
    resp = arm.call("DELETE", path, api_version=PG_VERSION)
    assert resp.status_code == 202
    assert arm.call("GET", path, api_version=PG_VERSION).json()["properties"]["state"] == "Dropping"
    arm.advance(300)
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    gone = arm.call("GET", path, api_version=PG_VERSION)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ResourceNotFound"
    assert arm.call("DELETE", path, api_version=PG_VERSION).status_code == 204


def test_replica_and_forced_state(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    primary = create_server(arm, sub, rg, "prim")
    replica = create_server(arm, sub, rg, "rep", createMode="Replica", sourceServerResourceId=primary)
    body = arm.call("GET", replica, api_version=PG_VERSION).json()
    assert body["properties"]["replicationRole"] == "AsyncReplica"
    assert body["properties"]["sourceServerResourceId"] == primary
    bad = arm.call(
        "PUT", server_path(sub, rg, "rep2"), server_body(createMode="Replica", sourceServerResourceId="/x"), PG_VERSION
    )
    assert bad.status_code == 400
    forced = arm.admin("POST", "servers/state", {"id": primary, "state": "Stopped"})
    assert forced.json()["properties"]["state"] == "Stopped"
    assert arm.call("GET", primary, api_version=PG_VERSION).json()["properties"]["state"] == "Stopped"
    assert arm.admin("POST", "servers/state", {"id": primary, "state": "Bogus"}).status_code == 400


def test_missing_location_is_rejected(arm: Arm, group: tuple[str, str]) -> None:
    sub, rg = group
    short = arm.call("PUT", server_path(sub, rg, "x"), server_body(), PG_VERSION)  # the spec's name rule
    assert short.status_code == 400 and short.json()["error"]["code"] == "InvalidResourceName"
    resp = arm.call("PUT", server_path(sub, rg, "srv-x"), {"properties": {}}, PG_VERSION)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "LocationRequired"
