"""The app's role on the backup vaults: a custom role with exactly the actions the app uses, none that deletes.

Action names are Azure's (the Microsoft.DataProtection resource provider operations list, also quoted by the
Backup Contributor built-in role definition); tests/infra cannot ask Azure, so the list is pinned here.
"""

from __future__ import annotations

from typing import Any

from . import bicep

BACKUP_CONTRIBUTOR = "5e467623-bb1f-42f4-a55d-6e525e11384b"
VAULT_RBAC = bicep.INFRA / "app" / "vault-rbac.bicep"

# What the app calls on a vault (shared/backup.py), and the action each call needs.
VAULT_ACTIONS = {
    "Microsoft.DataProtection/backupVaults/read",  # GET the vault: location and identity
    "Microsoft.DataProtection/backupVaults/backupPolicies/read",  # the policy a backup instance names
    "Microsoft.DataProtection/backupVaults/validateForBackup/action",  # POST .../validateForBackup
    "Microsoft.DataProtection/backupVaults/backupInstances/read",  # list and GET backup instances
    "Microsoft.DataProtection/backupVaults/backupInstances/write",  # PUT a backup instance
    "Microsoft.DataProtection/backupVaults/backupInstances/resumeProtection/action",  # undo someone's stop
    "Microsoft.DataProtection/backupVaults/backupInstances/resumeBackups/action",  # undo someone's suspension
    "Microsoft.DataProtection/backupVaults/operationStatus/read",  # Azure-AsyncOperation under the vault
    "Microsoft.DataProtection/backupVaults/operationResults/read",
    "Microsoft.DataProtection/backupVaults/backupInstances/operationResults/read",  # Location of a PUT
}


def vault_role_permissions() -> dict[str, Any]:
    role = bicep.resources(bicep.MAIN)["vaultRole"]
    assert role["type"] == "Microsoft.Authorization/roleDefinitions"
    properties = bicep.body(role)["properties"]
    assert properties["type"] == "CustomRole"
    (permissions,) = properties["permissions"]
    assert isinstance(permissions, dict)
    return permissions


def test_vault_role_actions_are_exactly_what_the_app_uses() -> None:
    permissions = vault_role_permissions()
    assert sorted(permissions["actions"]) == sorted(VAULT_ACTIONS)
    assert len(permissions["actions"]) == len(VAULT_ACTIONS), "an action is listed twice"
    assert not permissions.get("dataActions") and not permissions["notActions"]


def test_vault_role_cannot_delete_and_has_no_wildcard() -> None:
    for action in vault_role_permissions()["actions"]:
        assert "delete" not in action.lower(), action
        assert "stopprotection" not in action.lower() and "suspend" not in action.lower(), action
        assert "*" not in action, action
    # Jobs are read only by the operator CLI (report --with-backups), with the operator's own identity.
    assert not any("backupJobs" in action for action in vault_role_permissions()["actions"])


def test_vault_role_is_assignable_where_the_vaults_are() -> None:
    properties = bicep.body(bicep.resources(bicep.MAIN)["vaultRole"])["properties"]
    operation_status = bicep.body(bicep.resources(bicep.MAIN)["operationStatusRole"])["properties"]
    assert properties["assignableScopes"] == operation_status["assignableScopes"] == "customRoleScopes"
    scopes = bicep.call(bicep.variables(bicep.MAIN)["customRoleScopes"], "union")
    assert scopes is not None and "vaultSubscriptionScopes" in scopes.values()


def test_each_vault_gets_the_vault_role_by_a_deterministic_name() -> None:
    call = bicep.modules(bicep.MAIN)["vaultAccess"]
    assert call["config"]["loop_type"]["detail"]["array_name"] == "vaultIds"
    binding = bicep.body(call)["params"]
    assert binding["roleDefinitionGuid"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "vaultRole", "operand_2": "name"}}
    }
    assert binding["principalId"] == "appPrincipalId"
    (assignment,) = [d for p, _, d in bicep.role_assignments() if p == VAULT_RBAC]
    properties = bicep.body(assignment)
    assert bicep.call(properties["name"], "guid") == {
        "base_string": {
            "operator": {"type": "property_accessor", "operands": {"operand_1": "vault", "operand_2": "id"}}
        },
        "extra_string_1": "principalId",
        "extra_string_2": "roleDefinitionGuid",
    }
    role = bicep.call(properties["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert role is not None and role["resource_name_1"] == "roleDefinitionGuid"


def test_backup_contributor_is_assigned_nowhere() -> None:
    for path in bicep.bicep_files():
        assert BACKUP_CONTRIBUTOR not in path.read_text(encoding="utf-8"), path.name
    for path, name, declaration in bicep.role_assignments():
        role = bicep.call(bicep.body(declaration)["properties"]["roleDefinitionId"], "subscription_resource_id")
        assert role is not None
        value = bicep.variables(path).get(role["resource_name_1"], role["resource_name_1"])
        assert value != BACKUP_CONTRIBUTOR, f"{path.name}:{name}"


def test_resource_guard_link_is_optional_and_named_as_azure_requires() -> None:
    assert bicep.params(bicep.MAIN)["resourceGuardId"]["default"] == ""
    assert bicep.body(bicep.modules(bicep.MAIN)["vaultAccess"])["params"]["resourceGuardId"] == "resourceGuardId"
    proxy = bicep.resources(VAULT_RBAC)["resourceGuardProxy"]
    assert proxy["type"] == "Microsoft.DataProtection/backupVaults/backupResourceGuardProxies"
    empty = {"function": {"type": "empty", "parameters": {"item_to_test": "resourceGuardId"}}}
    assert bicep.condition(proxy) == {"operator": {"type": "not", "operands": {"bool_value": empty}}}
    config = bicep.body(proxy)
    assert config["parent"] == "vault"
    assert config["name"] == "DppResourceGuardProxy"  # the only name a Backup vault's proxy may have
    assert config["properties"] == {"resourceGuardResourceId": "resourceGuardId"}
    mapped = bicep.INFRA.joinpath("main.parameters.json").read_text(encoding="utf-8")
    assert '"resourceGuardId": {"value": "${AUTOPROTECT_RESOURCE_GUARD_ID=}"}' in mapped
