"""Least privilege and no shared secrets: the role assignments and the security settings of the AVM modules.

checkov cannot see inside Azure Verified Modules (registry modules are not downloaded), so the security-relevant
parameters passed to them are asserted here instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import bicep

# Every built-in role the deployment grants, by GUID (docs/SECURITY.md explains each). The two custom roles
# (operation status, the vault role) are assigned through a parameter: see PARAMETERISED below.
ALLOWED_ROLES = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
POSTGRES_LTR_BACKUP_ROLE = "c088a766-074b-43ba-90d4-1fb21feae531"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
# The assignments of the custom roles defined in main.bicep: file -> the parameter that carries the role's GUID.
PARAMETERISED = {"subscription-role.bicep": "roleDefinitionGuid", "vault-rbac.bicep": "roleDefinitionGuid"}


def role_guid(path: Path, expression: Any) -> str | None:
    """The GUID of `subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <named variable>)`.

    None for the parameterised assignments of the custom roles (PARAMETERISED).
    """
    call = bicep.call(expression, "subscription_resource_id")
    assert call is not None and call["resource_type"] == "Microsoft.Authorization/roleDefinitions", expression
    name = call["resource_name_1"]
    if PARAMETERISED.get(path.name) == name and name in bicep.params(path):
        return None
    variables = bicep.variables(path)
    assert name in variables, f"{path.name}: role GUIDs live in named, commented variables, not inline ({name})"
    guid = variables[name]
    assert isinstance(guid, str) and bicep.GUID.match(guid), guid
    return guid


def test_every_role_is_known_and_assigned_by_guid() -> None:
    assignments = bicep.role_assignments()
    assert len(assignments) >= 8
    used = set()
    for path, name, declaration in assignments:
        properties = bicep.body(declaration)["properties"]
        guid = role_guid(path, properties["roleDefinitionId"])
        if guid is not None:
            assert guid in ALLOWED_ROLES, f"{path.name}:{name} grants an unexpected role {guid}"
            used.add(guid)
        assert properties.get("description"), f"{path.name}:{name} should say why"
    assert used == set(ALLOWED_ROLES)


def test_role_guid_variables_are_commented() -> None:
    for path in bicep.bicep_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if line.startswith("var ") and bicep.GUID.search(line.split("=", 1)[-1].strip().strip("'")):
                assert lines[index - 1].lstrip().startswith("//"), f"{path.name}:{index + 1} needs a comment"


def test_app_identity_gets_no_broad_role() -> None:
    for path, name, declaration in bicep.role_assignments():
        guid = role_guid(path, bicep.body(declaration)["properties"]["roleDefinitionId"])
        assert guid not in {
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
            "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
            "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
        }, f"{path.name}:{name}"


def test_auto_grant_is_conditional_and_constrained() -> None:
    path = bicep.INFRA / "app" / "subscription-scope.bicep"
    declaration = bicep.resources(path)["autoGrantAssignment"]
    assert bicep.condition(declaration) == "autoGrant", "only with auto-grant on"
    properties = bicep.body(declaration)["properties"]
    assert role_guid(path, properties["roleDefinitionId"]) == RBAC_ADMINISTRATOR
    assert properties["conditionVersion"] == "2.0"
    variables = bicep.variables(path)
    condition = variables[properties["condition"]].replace("\\'", "'")  # pycep keeps Bicep's \' escapes
    roles = variables["allowedRoles"]
    resolved = roles.replace("${postgresLtrBackupRoleId}", variables["postgresLtrBackupRoleId"]).replace(
        "${vaultReaderRoleId}", variables["vaultReaderRoleId"]
    )
    assert sorted(r.strip() for r in resolved.split(",")) == sorted([POSTGRES_LTR_BACKUP_ROLE, READER])
    # Both halves (write via @Request, delete via @Resource) restrict the role and the principal.
    for half, source in (("write", "@Request"), ("delete", "@Resource")):
        assert f"!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{half}'}})" in condition
        assert f"{source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals" in (
            condition
        )
        assert f"{source}[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals" in (
            condition
        )
    assert condition.count("{${allowedRoles}}") == 2 and condition.count("{${allowedPrincipals}}") == 2
    main_binding = bicep.body(bicep.modules(bicep.MAIN)["subscriptionScope"])["params"]
    assert main_binding["vaultPrincipalIds"] == "vaultPrincipalIds"


def test_storage_uses_identity_only() -> None:
    params = bicep.body(bicep.modules(bicep.MAIN)["storage"])["params"]
    assert params["allowSharedKeyAccess"] is False
    assert params["allowBlobPublicAccess"] is False
    assert params["defaultToOAuthAuthentication"] is True
    assert params["minimumTlsVersion"] == "TLS1_2"
    assert params["supportsHttpsTrafficOnly"] is True
    settings = bicep.app_settings()
    assert bicep.variables(bicep.FUNCTION)["hostSettings"]["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage__accountKey" not in settings


def test_application_insights_requires_entra() -> None:
    params = bicep.body(bicep.modules(bicep.MAIN)["appInsights"])["params"]
    assert params["disableLocalAuth"] is True
    value = bicep.variables(bicep.FUNCTION)["hostSettings"]["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    branches = bicep.conditional(value)
    assert branches is not None
    _, with_client_id, system = branches
    assert system == "Authorization=AAD"
    assert with_client_id == "ClientId=${userAssignedIdentityClientId};Authorization=AAD"


def test_function_app_is_flex_consumption_python_311_with_identity() -> None:
    site = bicep.body(bicep.modules(bicep.FUNCTION)["site"])["params"]
    assert site["kind"] == "functionapp,linux"
    assert site["httpsOnly"] is True
    assert site["managedIdentities"]["systemAssigned"] is True
    config = site["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    assert bicep.params(bicep.FUNCTION)["runtimeVersion"]["default"] == "3.11"
    assert config["deployment"]["storage"]["type"] == "blobContainer"
    assert site["siteConfig"]["ftpsState"] == "Disabled" and site["siteConfig"]["minTlsVersion"] == "1.2"
    assert {p["name"]: p["allow"] for p in site["basicPublishingCredentialsPolicies"]} == {"ftp": False, "scm": False}
    plan = bicep.body(bicep.modules(bicep.MAIN)["plan"])["params"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["reserved"] is True


def test_operation_status_role_only_reads_operations() -> None:
    role = bicep.resources(bicep.MAIN)["operationStatusRole"]
    assert role["type"] == "Microsoft.Authorization/roleDefinitions"
    properties = bicep.body(role)["properties"]
    assert properties["type"] == "CustomRole"
    (permissions,) = properties["permissions"]
    assert sorted(permissions["actions"]) == [
        "Microsoft.DataProtection/locations/operationResults/read",
        "Microsoft.DataProtection/locations/operationStatus/read",
    ]
    assert not permissions.get("dataActions") and not permissions["notActions"]
