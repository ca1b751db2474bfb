"""Done-when: the requests clients send and the emulator's responses validate against the Azure REST specs.

A full happy path (official SDK clients) plus a few error paths run in a fresh subscription; then every
exchange of that subscription in the traffic log is matched to a Swagger operation and validated (see
tests/emulator/swagger.py for how and why).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.emulator.helpers import LTR_ROLE, READER_ROLE, Arm, eventually, instance, policy_body, read_jsonl
from tests.emulator.swagger import SpecSet

SPEC_FILES = [
    "dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/stable/2026-06-01/dataprotection.json",
    "postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2025-08-01/FlexibleServers.json",
    "authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json",
]
# Routes the emulator serves that the vendored specs do not describe (resource groups, PostgreSQL's own
# operation endpoints and child resources).
UNSPECIFIED = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+$"
    r"|^/subscriptions/[^/]+/providers/microsoft\.dbforpostgresql/locations/[^/]+/(azureasyncoperation|operationresults)/"
    r"|/providers/microsoft\.dbforpostgresql/flexibleservers/[^/]+/(databases|firewallrules)/[^/]+$"
)
EXPECTED_OPERATIONS = {
    "Servers_Create",
    "Servers_Get",
    "Servers_List",
    "Servers_ListByResourceGroup",
    "Servers_Delete",
    "BackupVaults_CreateOrUpdate",
    "BackupVaults_Get",
    "BackupPolicies_CreateOrUpdate",
    "BackupPolicies_List",
    "RoleAssignments_Create",
    "RoleAssignments_ListForResource",
    "BackupInstances_ValidateForBackup",
    "OperationStatus_Get",
    "OperationResult_Get",
    "BackupInstances_CreateOrUpdate",
    "BackupInstances_Get",
    "BackupInstances_List",
    "BackupInstancesExtensionRouting_List",
    "BackupInstances_Delete",
    "Jobs_List",
    "Jobs_Get",
}
POLL = {"polling_interval": 0.05}


def _run_flow(sdk: dict[str, Any], arm: Arm) -> str:
    sub = sdk["sub"]
    pg, dp, auth = sdk["postgres"], sdk["dataprotection"], sdk["authorization"]
    sdk["resources"].resource_groups.create_or_update("rg", {"location": "westeurope"})
    server = pg.servers.begin_create_or_update(
        "rg",
        "pg-spec",
        {
            "location": "westeurope",
            "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
            "properties": {"administratorLogin": "a", "administratorLoginPassword": "p", "version": "16"},
        },
        **POLL,
    ).result()
    list(pg.servers.list_by_subscription())
    list(pg.servers.list_by_resource_group("rg"))
    storage = [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]
    vault_body = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": storage},
    }
    vault = dp.backup_vaults.begin_create_or_update("rg", "vault", vault_body, **POLL).result()
    dp.backup_vaults.get("rg", "vault")
    policy = dp.backup_policies.create_or_update("rg", "vault", "weekly", policy_body())
    list(dp.backup_policies.list("rg", "vault"))
    for scope, role in ((server.id, LTR_ROLE), (f"/subscriptions/{sub}/resourceGroups/rg", READER_ROLE)):
        auth.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            {
                "role_definition_id": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "principal_id": vault.identity.principal_id,
                "principal_type": "ServicePrincipal",
            },
        )
    list(auth.role_assignments.list_for_scope(server.id))
    arm.advance(600)
    bi = instance(server.id, policy.id)
    dp.backup_instances.begin_validate_for_backup("rg", "vault", {"backupInstance": bi}, **POLL).result()
    dp.backup_instances.begin_create_or_update("rg", "vault", "bi", {"properties": bi}, **POLL).result()
    dp.backup_instances.get("rg", "vault", "bi")
    list(dp.backup_instances.list("rg", "vault"))
    arm.call("GET", f"{server.id}/providers/Microsoft.DataProtection/backupInstances", api_version="2026-06-01")
    arm.advance(600)
    eventually(lambda: list(dp.jobs.list("rg", "vault")) != [], "the first scheduled backup job")
    jobs = list(dp.jobs.list("rg", "vault"))
    dp.jobs.get("rg", "vault", jobs[0].name)
    # error paths: already protected (sync 400), unknown api-version, missing resource
    arm.call("POST", f"{vault.id}/validateForBackup", {"backupInstance": bi}, "2026-06-01")
    arm.call("GET", f"{vault.id}/backupInstances/none", api_version="2026-06-01")
    arm.call("GET", f"{vault.id}", api_version="2099-01-01")
    dp.backup_instances.begin_delete("rg", "vault", "bi", **POLL).result()
    pg.servers.begin_delete("rg", "pg-spec", **POLL).result()
    return str(sub)


@pytest.mark.specs
def test_traffic_of_a_full_run_validates_against_the_specs(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    sub = _run_flow(sdk, arm)
    specs = SpecSet(specs_dir, [specs_dir / f for f in SPEC_FILES])
    entries = [e for e in read_jsonl(session_dir / "traffic.jsonl") if f"/subscriptions/{sub}" in e["request"]["url"]]
    assert len(entries) > 30
    seen: set[str] = set()
    problems: list[str] = []
    for entry in entries:
        op, errors = specs.check_exchange(entry)
        url = entry["request"]["url"]
        if op is None:
            method = entry["request"]["method"]
            assert UNSPECIFIED.search(urlsplit(url).path.lower()), f"unspecified route: {method} {url}"
            continue
        seen.add(op.operation_id)
        problems += [f"{op.operation_id} {entry['request']['method']} {url}: {e}" for e in errors]
    assert problems == []
    assert seen >= EXPECTED_OPERATIONS, EXPECTED_OPERATIONS - seen


@pytest.mark.specs
def test_validator_catches_bad_bodies(specs_dir: Path) -> None:
    """The validator itself: a missing discriminated field and an undeclared status are reported."""
    specs = SpecSet(specs_dir, [specs_dir / f for f in SPEC_FILES])
    url = (
        "https://x/subscriptions/s/resourceGroups/r/providers/Microsoft.DataProtection/backupVaults/v/backupPolicies/p"
    )
    bad_policy = {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": ["x"],
            "policyRules": [{"objectType": "AzureBackupRule", "name": "r"}],
        }
    }
    op, errors = specs.check_exchange(
        {"request": {"method": "PUT", "url": url, "body": bad_policy}, "response": {"status": 201, "body": None}}
    )
    assert op is not None and op.operation_id == "BackupPolicies_CreateOrUpdate"
    assert any("dataStore" in e for e in errors)
    assert any("status 201 is not declared" in e for e in errors)


SUBSCRIPTIONS_SPEC = "resources/resource-manager/Microsoft.Resources/subscriptions/stable/2022-12-01/subscriptions.json"


@pytest.mark.specs
def test_the_subscriptions_list_with_the_official_client_validates(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    """What AUTOPROTECT_ANY_SUBSCRIPTION reads: SubscriptionClient lists a subscription that holds a group."""
    from azure.mgmt.resource.subscriptions import SubscriptionClient

    sdk["resources"].resource_groups.create_or_update("rg-subs", {"location": "westeurope"})
    client = SubscriptionClient(
        sdk["credential"],
        base_url=arm.base,
        credential_scopes=["https://management.azure.com/.default"],
        retry_total=0,
    )
    listed = {s.subscription_id: s for s in client.subscriptions.list()}
    assert sdk["sub"] in listed
    assert listed[sdk["sub"]].state == "Enabled"
    specs = SpecSet(specs_dir, [specs_dir / SUBSCRIPTIONS_SPEC])
    exchanges = [
        e
        for e in read_jsonl(session_dir / "traffic.jsonl")
        if urlsplit(e["request"]["url"]).path.rstrip("/") == "/subscriptions"
    ]
    assert exchanges
    for entry in exchanges:
        op, errors = specs.check_exchange(entry)
        assert op is not None and op.operation_id == "Subscriptions_List"
        # The 2022-12-01 spec marks nextLink required; ARM omits it on the last page, and so does the emulator
        # (docs/EMULATOR.md). Every other rule of the spec holds.
        assert [e for e in errors if "'nextLink' is a required property" not in e] == []
