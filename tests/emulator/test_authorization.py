"""Role assignments: CRUD, $filter, inheritance, conflicts."""

from __future__ import annotations

import uuid

from tests.emulator.helpers import LTR_ROLE, RA_VERSION, READER_ROLE, Arm, new_sub, rg_path, role_body

RA = "providers/Microsoft.Authorization/roleAssignments"


def test_crud_filter_and_inheritance(arm: Arm) -> None:
    sub = new_sub()
    principal = str(uuid.uuid4())
    server = f"{rg_path(sub, 'rg')}/providers/Microsoft.DBforPostgreSQL/flexibleServers/s1"
    at_rg = f"{rg_path(sub, 'rg')}/{RA}/{uuid.uuid4()}"
    at_server = f"{server}/{RA}/{uuid.uuid4()}"
    created = arm.call("PUT", at_rg, role_body(sub, READER_ROLE, principal), RA_VERSION)
    assert created.status_code == 201
    body = created.json()
    assert body["type"] == "Microsoft.Authorization/roleAssignments"
    assert body["properties"]["scope"] == rg_path(sub, "rg")
    assert body["properties"]["principalId"] == principal
    assert arm.call("PUT", at_rg, role_body(sub, READER_ROLE, principal), RA_VERSION).status_code == 200
    assert arm.call("PUT", at_server, role_body(sub, LTR_ROLE, principal), RA_VERSION).status_code == 201

    def names(scope: str, flt: str | None = None) -> set[str]:
        params = {"$filter": flt} if flt else {}
        resp = arm.call("GET", f"{scope}/{RA}", api_version=RA_VERSION, params=params)
        assert resp.status_code == 200, resp.text
        return {r["name"] for r in resp.json()["value"]}

    rg_name, server_name = at_rg.rsplit("/", 1)[1], at_server.rsplit("/", 1)[1]
    assert names(server) == {rg_name, server_name}  # inherited from the resource group
    assert names(rg_path(sub, "rg")) == {rg_name, server_name}  # and below
    assert names(rg_path(sub, "rg"), "atScope()") == {rg_name}
    assert names(f"/subscriptions/{sub}", f"principalId eq '{principal}'") == {rg_name, server_name}
    assert names(f"/subscriptions/{sub}", f"principalId eq '{uuid.uuid4()}'") == set()

    got = arm.call("GET", at_server, api_version=RA_VERSION)
    assert got.json()["properties"]["roleDefinitionId"].endswith(LTR_ROLE)
    assert arm.call("DELETE", at_server, api_version=RA_VERSION).status_code == 200
    missing = arm.call("GET", at_server, api_version=RA_VERSION)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "RoleAssignmentNotFound"
    assert arm.call("DELETE", at_server, api_version=RA_VERSION).status_code == 204


def test_conflicts_and_bad_ids(arm: Arm) -> None:
    sub = new_sub()
    principal = str(uuid.uuid4())
    scope = rg_path(sub, "rg")
    first = f"{scope}/{RA}/{uuid.uuid4()}"
    assert arm.call("PUT", first, role_body(sub, READER_ROLE, principal), RA_VERSION).status_code == 201
    dup = arm.call("PUT", f"{scope}/{RA}/{uuid.uuid4()}", role_body(sub, READER_ROLE, principal), RA_VERSION)
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "RoleAssignmentExists"
    changed = arm.call("PUT", first, role_body(sub, LTR_ROLE, principal), RA_VERSION)
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "RoleAssignmentUpdateNotPermitted"
    bad_name = arm.call("PUT", f"{scope}/{RA}/not-a-guid", role_body(sub, READER_ROLE, principal), RA_VERSION)
    assert bad_name.status_code == 400
    bad_role = role_body(sub, READER_ROLE, principal)
    bad_role["properties"]["roleDefinitionId"] = "Reader"
    assert arm.call("PUT", f"{scope}/{RA}/{uuid.uuid4()}", bad_role, RA_VERSION).status_code == 400
