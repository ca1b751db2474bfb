"""Done-when: the official SDK clients, authenticated by ManagedIdentityCredential, drive the whole flow."""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulator.helpers import LTR_ROLE, PG, READER_ROLE, Arm, eventually, instance, policy_body

POLL = {"polling_interval": 0.05}


def test_full_protection_flow_with_official_clients(sdk: dict[str, Any], arm: Arm) -> None:
    sub = sdk["sub"]
    rgs, pg, dp, auth = sdk["resources"], sdk["postgres"], sdk["dataprotection"], sdk["authorization"]

    group = rgs.resource_groups.create_or_update("rg-sdk", {"location": "westeurope"})
    assert group.name == "rg-sdk"

    server = pg.servers.begin_create_or_update(
        "rg-sdk",
        "pg-sdk",
        {
            "location": "westeurope",
            "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
            "properties": {
                "administratorLogin": "pgadmin",
                "administratorLoginPassword": "Secret-123",
                "version": "16",
                "storage": {"storageSizeGB": 32},
            },
            "tags": {"env": "dev"},
        },
        **POLL,
    ).result()
    assert server.state == "Ready"
    assert server.replication_role == "Primary"
    assert [s.name for s in pg.servers.list_by_subscription()] == ["pg-sdk"]
    assert [s.name for s in pg.servers.list_by_resource_group("rg-sdk")] == ["pg-sdk"]

    vault = dp.backup_vaults.begin_create_or_update(
        "rg-sdk",
        "vault-sdk",
        {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
        },
        **POLL,
    ).result()
    principal = vault.identity.principal_id
    uuid.UUID(principal)

    policy = dp.backup_policies.create_or_update("rg-sdk", "vault-sdk", "weekly", policy_body())
    assert policy.properties.datasource_types == [PG]
    assert [p.name for p in dp.backup_policies.list("rg-sdk", "vault-sdk")] == ["weekly"]

    rg_scope = f"/subscriptions/{sub}/resourceGroups/rg-sdk"
    for scope, role in ((server.id, LTR_ROLE), (rg_scope, READER_ROLE)):
        created = auth.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            {
                "role_definition_id": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "principal_id": principal,
                "principal_type": "ServicePrincipal",
            },
        )
        assert created.principal_id == principal
    listed = list(auth.role_assignments.list_for_scope(server.id, filter=f"principalId eq '{principal}'"))
    assert len(listed) == 2  # the RG's Reader is inherited by the server scope
    arm.advance(600)  # role propagation

    bi = instance(server.id, policy.id)
    validation = dp.backup_instances.begin_validate_for_backup("rg-sdk", "vault-sdk", {"backupInstance": bi}, **POLL)
    validation.result()
    assert validation.status().lower() == "succeeded"

    created_bi = dp.backup_instances.begin_create_or_update("rg-sdk", "vault-sdk", "bi-sdk", {"properties": bi}, **POLL)
    created_bi.result()
    got = dp.backup_instances.get("rg-sdk", "vault-sdk", "bi-sdk")
    assert got.properties.current_protection_state in ("ConfiguringProtection", "ProtectionConfigured")
    eventually(
        lambda: (
            dp.backup_instances.get("rg-sdk", "vault-sdk", "bi-sdk").properties.current_protection_state
            == "ProtectionConfigured"
        ),
        "protection configured",
    )
    assert [i.name for i in dp.backup_instances.list("rg-sdk", "vault-sdk")] == ["bi-sdk"]
    eventually(lambda: len(list(dp.jobs.list("rg-sdk", "vault-sdk"))) == 1, "first backup job")
    job = next(iter(dp.jobs.list("rg-sdk", "vault-sdk")))
    assert dp.jobs.get("rg-sdk", "vault-sdk", job.name).properties.data_source_id == server.id
    arm.advance(3600)
    eventually(lambda: dp.jobs.get("rg-sdk", "vault-sdk", job.name).properties.status == "Completed", "backup done")

    # extension routing: instances protecting the server, in any vault
    ext = arm.call("GET", f"{server.id}/providers/Microsoft.DataProtection/backupInstances", api_version="2026-06-01")
    assert [i["name"] for i in ext.json()["value"]] == ["bi-sdk"]

    dp.backup_instances.begin_delete("rg-sdk", "vault-sdk", "bi-sdk", **POLL).result()
    assert list(dp.backup_instances.list("rg-sdk", "vault-sdk")) == []

    pg.servers.begin_delete("rg-sdk", "pg-sdk", **POLL).result()
    assert list(pg.servers.list_by_subscription()) == []


def test_sdk_defaults_use_supported_api_versions(sdk: dict[str, Any]) -> None:
    """The SDKs' default api-versions (2026-06-01, 2026-10-01, 2022-04-01, 2025-04-01) are all accepted."""
    assert list(sdk["dataprotection"].backup_vaults.get_in_subscription()) == []
    assert list(sdk["postgres"].servers.list_by_subscription()) == []
    assert list(sdk["resources"].resource_groups.list()) == []
    assert list(sdk["authorization"].role_assignments.list_for_subscription()) == []
