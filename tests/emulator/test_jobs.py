"""Backup jobs, recovery points, restore as files and vault identities, driven by the official Data Protection
client with its default long-running-operation pollers, each exchange validated against the spec."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.helpers import (
    LTR_ROLE,
    NO_GUARD,
    POLL,
    READER_ROLE,
    Arm,
    eventually,
    instance,
    policy_body,
    read_jsonl,
    sdk_protected,
    sdk_server,
    sdk_state,
)
from tests.emulator.swagger import SpecSet

DP_SPEC = (
    "dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/stable/2026-06-01/dataprotection.json"
)
WEEK = 7 * 86400
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ADHOC = {"backupRuleOptions": {"ruleName": "BackupWeekly", "triggerOption": {"retentionTagOverride": "Default"}}}


def _jobs(dp: Any, rg: str, status: str | None = None, operation: str = "Backup") -> list[Any]:
    jobs = [j for j in dp.jobs.list(rg, "vault") if j.properties.operation == operation]
    return [j for j in jobs if status is None or j.properties.status == status]


def _grant(sdk: dict[str, Any], scope: str, role: str, principal: str) -> str:
    definition = f"/subscriptions/{sdk['sub']}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    name = str(uuid.uuid4())
    body = {"role_definition_id": definition, "principal_id": principal, "principal_type": "ServicePrincipal"}
    sdk["authorization"].role_assignments.create(scope, name, body)
    return name


def _adhoc_job(sdk: dict[str, Any], rg: str) -> Any:
    dp = sdk["dataprotection"]
    result = dp.backup_instances.begin_adhoc_backup(rg, "vault", "bi", ADHOC, **POLL).result()
    job_id = result.job_id
    eventually(lambda: dp.jobs.get(rg, "vault", job_id).properties.status != "InProgress", "the ad-hoc job ends")
    return dp.jobs.get(rg, "vault", job_id)


def _files_target(rp: str, url: str = "https://drills.blob.core.windows.net/drill", **target: Any) -> dict[str, Any]:
    details = {"filePrefix": "drill", "restoreTargetLocationType": "AzureBlobs", "url": url, **target}
    return {
        "objectType": "AzureBackupRecoveryPointBasedRestoreRequest",
        "recoveryPointId": rp,
        "sourceDataStoreType": "VaultStore",
        "restoreTargetInfo": {
            "objectType": "RestoreFilesTargetInfo",
            "recoveryOption": "FailIfExists",
            "restoreLocation": "westeurope",
            "targetDetails": details,
        },
    }


def _check_traffic(specs_dir: Path, session_dir: Path, rg: str, prefix: str) -> set[str]:
    """Every exchange of this test's resource group validates; returns the operation ids seen."""
    specs = SpecSet(specs_dir, [specs_dir / DP_SPEC])
    seen: set[str] = set()
    for entry in read_jsonl(session_dir / "traffic.jsonl"):
        path = urlsplit(entry["request"]["url"]).path
        if f"/resourcegroups/{rg}/providers/microsoft.dataprotection/".lower() not in path.lower():
            continue
        op, errors = specs.check_exchange(entry)
        if op is None:  # resource-group-scoped result URLs are in the examples' headers, not in the spec paths
            assert "/operationResults/" in path, path
            continue
        assert errors == [], (entry["request"]["method"], path, errors)
        if op.operation_id.startswith(prefix):
            seen.add(op.operation_id)
    return seen


def test_scheduled_backups_make_recovery_points_and_stop_while_suspended(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    dp, rg = sdk["dataprotection"], "rg-sched"
    sdk_protected(sdk, arm, rg)
    arm.advance(900)  # the first scheduled backup starts and ends
    eventually(lambda: len(_jobs(dp, rg, "Completed")) == 1, "the first scheduled backup completes")
    (job,) = _jobs(dp, rg)
    assert job.properties.is_user_triggered is False and job.properties.end_time is not None
    (point,) = list(dp.recovery_points.list(rg, "vault", "bi"))
    assert point.properties.object_type == "AzureBackupDiscreteRecoveryPoint"
    assert dp.recovery_points.get(rg, "vault", "bi", point.name).properties.recovery_point_type == "Full"

    arm.advance(WEEK + 900)  # the policy's P1W: one more job a week later
    eventually(lambda: len(_jobs(dp, rg, "Completed")) == 2, "the second weekly backup completes")
    assert len(list(dp.recovery_points.list(rg, "vault", "bi"))) == 2

    dp.backup_instances.begin_suspend_backups(rg, "vault", "bi", NO_GUARD, **POLL).result()
    arm.advance(WEEK + 900)  # a suspended instance takes no backup
    assert len(_jobs(dp, rg)) == 2
    dp.backup_instances.begin_resume_backups(rg, "vault", "bi", **POLL).result()
    arm.advance(WEEK + 900)
    eventually(lambda: len(_jobs(dp, rg, "Completed")) == 3, "backups go on once resumed")

    seen = _check_traffic(specs_dir, session_dir, rg, "RecoveryPoints_")
    assert seen == {"RecoveryPoints_List", "RecoveryPoints_Get"}


def test_adhoc_backup_and_sync_with_the_official_client(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    dp, rg = sdk["dataprotection"], "rg-adhoc"
    sdk_protected(sdk, arm, rg)
    job = _adhoc_job(sdk, rg)
    assert job.properties.status == "Completed" and job.properties.is_user_triggered is True
    assert len(list(dp.recovery_points.list(rg, "vault", "bi"))) == 1

    unknown = {"backupRuleOptions": {"ruleName": "Nightly", "triggerOption": {}}}
    with pytest.raises(HttpResponseError) as refused:
        dp.backup_instances.begin_adhoc_backup(rg, "vault", "bi", unknown, **POLL).result()
    assert refused.value.status_code == 400 and refused.value.error is not None
    assert refused.value.error.code == "UserErrorInvalidBackupRuleName"

    dp.backup_instances.begin_sync_backup_instance(rg, "vault", "bi", {"syncType": "Default"}, **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionConfigured"

    dp.backup_instances.begin_stop_protection(rg, "vault", "bi", NO_GUARD, **POLL).result()
    with pytest.raises(HttpResponseError) as stopped:  # no backup of a stopped instance
        dp.backup_instances.begin_adhoc_backup(rg, "vault", "bi", ADHOC, **POLL).result()
    assert stopped.value.error is not None
    assert stopped.value.error.code == "UserErrorInvalidOperationForCurrentProtectionState"

    seen = _check_traffic(specs_dir, session_dir, rg, "BackupInstances_")
    assert {"BackupInstances_AdhocBackup", "BackupInstances_SyncBackupInstance"} <= seen


def test_backup_jobs_fail_the_way_azure_documents(sdk: dict[str, Any], arm: Arm) -> None:
    dp, pg, rg = sdk["dataprotection"], sdk["postgres"], "rg-jobfail"
    _, _, server_id = sdk_protected(sdk, arm, rg)
    name = server_id.rsplit("/", 1)[-1]

    pg.servers.begin_stop(rg, name, **POLL).result()  # not Ready at backup time
    failed = _adhoc_job(sdk, rg)
    assert failed.properties.status == "Failed"
    (error,) = failed.properties.error_details
    assert error.code == "PostgreSQLFlexOperationFailedUserError"
    assert error.inner_error.code == "ServerNotReadyForLongTermBackup"
    pg.servers.begin_start(rg, name, **POLL).result()

    pg.servers.begin_update(rg, name, {"properties": {"storage": {"storageSizeGB": 2048}}}, **POLL).result()
    too_big = _adhoc_job(sdk, rg)  # configured fine, every job fails over 1 TB
    assert too_big.properties.status == "Failed"
    assert too_big.properties.error_details[0].inner_error.code == "UserErrorServerSizeNotSupportedForVaultedBackup"
    assert sdk_state(dp, rg) == "ProtectionConfigured"
    pg.servers.begin_update(rg, name, {"properties": {"storage": {"storageSizeGB": 512}}}, **POLL).result()

    arm.admin("POST", "backups/fail", {"server": server_id, "code": "UserErrorDppInternalError"}).raise_for_status()
    assert _adhoc_job(sdk, rg).properties.error_details[0].code == "UserErrorDppInternalError"
    assert _adhoc_job(sdk, rg).properties.status == "Completed"  # only the next one

    auth = sdk["authorization"]
    for assignment in auth.role_assignments.list_for_scope(server_id):
        if assignment.role_definition_id.endswith(LTR_ROLE):
            auth.role_assignments.delete(server_id, assignment.name)
    lost = _adhoc_job(sdk, rg)
    assert lost.properties.error_details[0].code == "UserErrorMSIMissingPermissions"
    got = dp.backup_instances.get(rg, "vault", "bi").properties
    assert (
        sdk_state(dp, rg) == "ProtectionError"
        and got.protection_status.error_details.code == lost.properties.error_details[0].code
    )

    principal = dp.backup_vaults.get(rg, "vault").identity.principal_id
    _grant(sdk, server_id, LTR_ROLE, principal)
    arm.advance(600)
    dp.backup_instances.begin_sync_backup_instance(rg, "vault", "bi", {"syncType": "Default"}, **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionConfigured"


def test_restore_as_files_with_the_official_client(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    dp, rg = sdk["dataprotection"], "rg-restore"
    sdk_protected(sdk, arm, rg)
    with pytest.raises(HttpResponseError) as no_point:
        dp.backup_instances.begin_validate_for_restore(
            rg, "vault", "bi", {"restoreRequestObject": _files_target("none")}, **POLL
        ).result()
    assert no_point.value.error is not None and no_point.value.error.code == "UserErrorRecoveryPointNotFound"
    _adhoc_job(sdk, rg)
    (point,) = list(dp.recovery_points.list(rg, "vault", "bi"))

    request = _files_target(point.name)
    dp.backup_instances.begin_validate_for_restore(
        rg, "vault", "bi", {"restoreRequestObject": request}, **POLL
    ).result()
    result = dp.backup_instances.begin_trigger_restore(rg, "vault", "bi", request, **POLL).result()
    eventually(lambda: dp.jobs.get(rg, "vault", result.job_id).properties.status != "InProgress", "the restore job")
    job = dp.jobs.get(rg, "vault", result.job_id).properties
    assert job.operation == "Restore" and job.status == "Completed"
    assert job.extended_info.recovery_destination == request["restoreTargetInfo"]["targetDetails"]["url"]
    assert job.extended_info.source_recover_point.recovery_point_id == point.name

    server_target = {
        "objectType": "RestoreTargetInfo",
        "recoveryOption": "FailIfExists",
        "restoreLocation": "westeurope",
    }
    server_target["datasourceInfo"] = instance(point.id, "p")["dataSourceInfo"]
    to_server = {**request, "restoreTargetInfo": server_target}
    with pytest.raises(HttpResponseError) as not_files:  # this datasource restores from the vault as files only
        dp.backup_instances.begin_trigger_restore(rg, "vault", "bi", to_server, **POLL).result()
    assert not_files.value.error is not None and not_files.value.error.code == "UserErrorRestoreTypeNotSupported"

    container = (
        f"/subscriptions/{sdk['sub']}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/drills"
        "/blobServices/default/containers/drill"
    )
    no_role = _files_target(point.name, targetResourceArmId=container)
    with pytest.raises(HttpResponseError) as refused:  # validation checks the vault identity's role on the target
        dp.backup_instances.begin_validate_for_restore(
            rg, "vault", "bi", {"restoreRequestObject": no_role}, **POLL
        ).result()
    assert refused.value.error is not None and refused.value.error.code == "UserErrorMissingRequiredPermissions"
    denied = dp.backup_instances.begin_trigger_restore(rg, "vault", "bi", no_role, **POLL).result()
    eventually(lambda: dp.jobs.get(rg, "vault", denied.job_id).properties.status == "Failed", "the job fails")

    principal = dp.backup_vaults.get(rg, "vault").identity.principal_id
    _grant(sdk, container, BLOB_CONTRIBUTOR, principal)
    arm.advance(600)
    dp.backup_instances.begin_validate_for_restore(
        rg, "vault", "bi", {"restoreRequestObject": no_role}, **POLL
    ).result()

    seen = _check_traffic(specs_dir, session_dir, rg, "BackupInstances_")
    assert {"BackupInstances_ValidateForRestore", "BackupInstances_TriggerRestore"} <= seen
    seen_jobs = _check_traffic(specs_dir, session_dir, rg, "Jobs_")
    assert seen_jobs == {"Jobs_Get"}


def test_a_vault_with_a_user_assigned_identity(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    dp, rg, sub = sdk["dataprotection"], "rg-uami", sdk["sub"]
    server = sdk_server(sdk, rg, "pg-uami")
    uami = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/backup"
    body = {
        "location": "westeurope",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami: {}}},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }
    vault = dp.backup_vaults.begin_create_or_update(rg, "vault", body, **POLL).result()
    assert vault.identity.principal_id is None
    principal = vault.identity.user_assigned_identities[uami].principal_id
    policy = dp.backup_policies.create_or_update(rg, "vault", "weekly", policy_body())
    _grant(sdk, server.id, LTR_ROLE, principal)
    _grant(sdk, f"/subscriptions/{sub}/resourceGroups/{rg}", READER_ROLE, principal)
    arm.advance(600)

    bare = instance(server.id, policy.id)  # no identityDetails: the system identity, which this vault has not
    with pytest.raises(HttpResponseError) as no_system:
        dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": bare}, **POLL).result()
    assert no_system.value.error is not None and no_system.value.error.code == "UserErrorMissingRequiredPermissions"

    other = uami.replace("/backup", "/other")
    wrong = {**bare, "identityDetails": {"useSystemAssignedIdentity": False, "userAssignedIdentityArmUrl": other}}
    with pytest.raises(HttpResponseError) as unattached:
        dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": wrong}, **POLL).result()
    assert unattached.value.error is not None
    assert unattached.value.error.code == "UserErrorUserAssignedIdentityNotAttachedToVault"

    bi = {**bare, "identityDetails": {"useSystemAssignedIdentity": False, "userAssignedIdentityArmUrl": uami}}
    dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": bi}, **POLL).result()
    dp.backup_instances.begin_create_or_update(rg, "vault", "bi", {"properties": bi}, **POLL).result()
    eventually(lambda: sdk_state(dp, rg) == "ProtectionConfigured", "configured with the user-assigned identity")
    assert _adhoc_job(sdk, rg).properties.status == "Completed"

    seen = _check_traffic(specs_dir, session_dir, rg, "BackupVaults_")
    assert "BackupVaults_CreateOrUpdate" in seen
