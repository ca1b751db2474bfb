"""Service rules of Azure Backup for PostgreSQL flexible servers: exact status, code and error shape."""

from __future__ import annotations

from typing import Any

from tests.emulator.helpers import (
    LTR_ROLE,
    PG_VERSION,
    READER_ROLE,
    Arm,
    World,
    create_server,
    rg_path,
    vault_body,
    vault_path,
)

DP = "2026-06-01"


def _async_failure(arm: Arm, resp: Any) -> dict[str, Any]:
    assert resp.status_code in (201, 202), resp.text
    status = arm.poll_status(resp.headers["Azure-AsyncOperation"])
    assert status["status"] == "Failed"
    return status


def test_happy_validate_is_202_with_async_headers_and_succeeds(arm: Arm) -> None:
    world = World(arm)
    resp = world.validate()
    assert resp.status_code == 202
    assert int(resp.headers["Retry-After"]) >= 1
    op = resp.headers["Azure-AsyncOperation"]
    assert f"/subscriptions/{world.sub}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/" in op
    assert op.split("?")[0].endswith("=")
    assert "/operationResults/" in resp.headers["Location"]
    status = arm.poll_status(op)
    assert status["status"] == "Succeeded"
    assert status["properties"]["objectType"] == "OperationJobExtendedInfo"
    result = arm.call("GET", resp.headers["Location"])
    assert result.status_code == 200
    assert result.json()["objectType"] == "OperationJobExtendedInfo"


def test_already_protected_in_any_vault_is_sync_400_naming_the_vault(arm: Arm) -> None:
    world = World(arm)
    first = world.put_instance("bi1")
    assert first.status_code == 201
    arm.poll_status(first.headers["Azure-AsyncOperation"])

    # a second vault in the same region, with a policy, tries to protect the same server
    other_vault = vault_path(world.sub, world.rg, "vault2")
    assert arm.call("PUT", other_vault, vault_body(), DP).status_code == 201
    from tests.emulator.helpers import policy_body

    assert arm.call("PUT", f"{other_vault}/backupPolicies/weekly", policy_body(), DP).status_code == 200
    body = world.instance()
    body["policyInfo"]["policyId"] = f"{other_vault}/backupPolicies/weekly"
    resp = arm.call("POST", f"{other_vault}/validateForBackup", {"backupInstance": body}, DP)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "UserErrorDppDatasourceAlreadyProtected"
    assert world.vault_id in error["message"]
    assert "Azure-AsyncOperation" not in resp.headers

    put = arm.call("PUT", f"{other_vault}/backupInstances/bi2", {"properties": body}, DP)
    assert put.status_code == 400
    assert put.json()["error"]["code"] == "UserErrorDppDatasourceAlreadyProtected"

    # validate again against the same vault: also already protected
    assert world.validate().json()["error"]["code"] == "UserErrorDppDatasourceAlreadyProtected"


def test_same_name_same_datasource_put_is_idempotent_200(arm: Arm) -> None:
    world = World(arm)
    first = world.put_instance("bi1")
    assert first.status_code == 201
    arm.poll_status(first.headers["Azure-AsyncOperation"])
    again = world.put_instance("bi1")
    assert again.status_code == 200
    assert again.json()["name"] == "bi1"


def _check_permission_error(status: dict[str, Any]) -> None:
    error = status["error"]
    assert error["code"] == "UserErrorMissingRequiredPermissions"
    info = error["additionalInfo"][0]
    assert info["type"] == "UserFacingError"
    assert info["info"]["code"] == "UserErrorMissingRequiredPermissions"
    assert info["info"]["message"]
    assert info["info"]["recommendedAction"]
    assert info["info"]["isRetryable"] is False


def test_missing_server_role_fails_async_with_user_facing_error(arm: Arm) -> None:
    world = World(arm, grant_server_role=False)
    status = _async_failure(arm, world.validate())
    _check_permission_error(status)
    assert "endTime" in status and "startTime" in status


def test_missing_reader_on_resource_group_fails_async(arm: Arm) -> None:
    world = World(arm, grant_rg_role=False)
    _check_permission_error(_async_failure(arm, world.validate()))


def test_roles_count_only_after_propagation_delay(arm: Arm) -> None:
    world = World(arm, propagate=False)
    _check_permission_error(_async_failure(arm, world.validate()))
    arm.advance(600)
    resp = world.validate()
    assert arm.poll_status(resp.headers["Azure-AsyncOperation"])["status"] == "Succeeded"


def test_role_on_parent_scope_is_inherited(arm: Arm) -> None:
    world = World(arm, grant_server_role=False, grant_rg_role=False, propagate=False)
    world.grant(f"/subscriptions/{world.sub}", LTR_ROLE)
    world.grant(f"/subscriptions/{world.sub}", READER_ROLE)
    arm.advance(600)
    assert arm.poll_status(world.validate().headers["Azure-AsyncOperation"])["status"] == "Succeeded"


def test_create_without_permissions_fails_and_instance_shows_protection_error(arm: Arm) -> None:
    world = World(arm, grant_server_role=False)
    resp = world.put_instance("bi1")
    assert resp.status_code == 201
    _check_permission_error(_async_failure(arm, resp))
    bi = arm.call("GET", f"{world.vault_id}/backupInstances/bi1", api_version=DP).json()["properties"]
    assert bi["currentProtectionState"] == "ConfiguringProtectionFailed"
    assert bi["protectionErrorDetails"]["code"] == "UserErrorMissingRequiredPermissions"


def test_vault_in_another_region_is_rejected(arm: Arm) -> None:
    world = World(arm, vault_location="northeurope")
    resp = world.validate()
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "UserErrorDatasourceAndBackupVaultLocationMismatch"


def test_server_not_ready_fails(arm: Arm) -> None:
    world = World(arm)
    forced = arm.admin("POST", "servers/state", {"id": world.server_id, "state": "Stopped"})
    assert forced.status_code == 200
    status = _async_failure(arm, world.validate())
    assert status["error"]["code"] == "UserErrorPostgreSQLFlexibleServerNotReady"
    assert status["error"]["additionalInfo"][0]["info"]["isRetryable"] is True


def test_replica_server_fails(arm: Arm) -> None:
    world = World(arm)
    replica = create_server(
        arm, world.sub, world.rg, "replica1", createMode="Replica", sourceServerResourceId=world.server_id
    )
    got = arm.call("GET", replica, api_version=PG_VERSION).json()
    assert got["properties"]["replicationRole"] == "AsyncReplica"
    world.grant(replica, LTR_ROLE)
    arm.advance(600)
    status = _async_failure(arm, world.validate(replica))
    assert status["error"]["code"] == "UserErrorPostgreSQLFlexibleServerReplicaNotSupported"


def test_policy_for_another_datasource_type_is_rejected(arm: Arm) -> None:
    world = World(arm, policy_type="Microsoft.Compute/disks")
    resp = world.validate()
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "UserErrorPolicyDatasourceTypeMismatch"


def test_swapped_body_shapes_fail(arm: Arm) -> None:
    """validate wants {"backupInstance": ...}; PUT wants {"properties": ...}."""
    world = World(arm, propagate=False)
    wrong_validate = arm.call("POST", f"{world.vault_id}/validateForBackup", {"properties": world.instance()}, DP)
    assert wrong_validate.status_code == 400
    assert wrong_validate.json()["error"]["code"] == "InvalidRequestContent"
    wrong_put = arm.call("PUT", f"{world.vault_id}/backupInstances/x", {"backupInstance": world.instance()}, DP)
    assert wrong_put.status_code == 400
    assert wrong_put.json()["error"]["code"] == "InvalidRequestContent"


def test_resource_in_missing_group_is_resource_group_not_found(arm: Arm) -> None:
    world = World(arm, propagate=False)
    resp = arm.call("PUT", vault_path(world.sub, "nope", "v"), vault_body(), DP)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "ResourceGroupNotFound"
    assert arm.call("GET", rg_path(world.sub, "nope"), api_version="2021-04-01").status_code == 404


def test_operation_status_at_vault_and_resource_group_scope(arm: Arm) -> None:
    world = World(arm)
    resp = world.validate()
    op_id = resp.headers["Azure-AsyncOperation"].split("/operationStatus/")[1].split("?")[0]
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    for path in (
        f"{world.vault_id}/operationStatus/{op_id}",
        f"{rg_path(world.sub, world.rg)}/providers/Microsoft.DataProtection/operationStatus/{op_id}",
    ):
        got = arm.call("GET", path, api_version=DP)
        assert got.status_code == 200, got.text
        assert got.json()["name"] == op_id
        assert got.json()["status"] == "Succeeded"
    wrong = arm.call("GET", f"{vault_path(world.sub, world.rg, 'other')}/operationStatus/{op_id}", api_version=DP)
    assert wrong.status_code == 404


def test_vault_with_instances_cannot_be_deleted(arm: Arm) -> None:
    world = World(arm)
    resp = world.put_instance("bi1")
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    blocked = arm.call("DELETE", world.vault_id, api_version=DP)
    assert blocked.status_code == 400
    assert blocked.json()["error"]["code"] == "UserErrorBackupVaultHasBackupInstances"
    deleted = arm.call("DELETE", f"{world.vault_id}/backupInstances/bi1", api_version=DP)
    assert deleted.status_code == 202
    arm.advance(120)
    arm.poll_status(deleted.headers["Azure-AsyncOperation"])
    assert arm.call("DELETE", world.vault_id, api_version=DP).status_code == 200
    assert arm.call("GET", world.vault_id, api_version=DP).status_code == 404
    assert arm.call("DELETE", world.vault_id, api_version=DP).status_code == 204


def test_postgres_policies_must_be_weekly_on_the_vault_store(arm: Arm) -> None:
    from tests.emulator.helpers import policy_body

    world = World(arm, propagate=False)
    daily = policy_body()
    daily["properties"]["policyRules"][0]["trigger"]["schedule"]["repeatingTimeIntervals"] = [
        "R/2024-01-07T02:00:00+00:00/P1D"
    ]
    resp = arm.call("PUT", f"{world.vault_id}/backupPolicies/daily", daily, DP)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "UserErrorInvalidPolicyForDatasourceType"
    operational = policy_body()
    operational["properties"]["policyRules"][0]["dataStore"]["dataStoreType"] = "OperationalStore"
    assert arm.call("PUT", f"{world.vault_id}/backupPolicies/op", operational, DP).status_code == 400
