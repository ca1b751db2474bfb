"""Day 2 of a flexible server, driven by the official SDK client: stop, start, restart, auto-start, read lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import HttpResponseError

from tests.emulator.helpers import NO_GUARD, POLL, Arm, eventually, read_jsonl, sdk_protected, sdk_server, sdk_state
from tests.emulator.swagger import SpecSet

PG_SPECS = [
    "postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2025-08-01/ServerStartStopRestart.json",
    "postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2025-08-01/FlexibleServers.json",
]
ACTION_NAMES = {f"Microsoft.DBforPostgreSQL/flexibleServers/{action}/action" for action in ("stop", "start", "restart")}


def _events(arm: Arm, subject: str) -> list[dict[str, Any]]:
    recent = arm.admin("GET", "events", params={"limit": "5000"}).json()["recent"]
    return [e for e in recent if e["subject"].lower() == subject.lower()]


def test_stop_start_restart_with_the_official_client(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    pg = sdk["postgres"]
    server = sdk_server(sdk, "rg-life", "pg-life")
    pg.servers.begin_stop("rg-life", "pg-life", **POLL).result()
    assert pg.servers.get("rg-life", "pg-life").state == "Stopped"
    with pytest.raises(HttpResponseError) as refused:
        pg.servers.begin_stop("rg-life", "pg-life", **POLL).result()
    assert refused.value.status_code == 409 and refused.value.error is not None
    assert refused.value.error.code == "InvalidServerState"
    pg.servers.begin_start("rg-life", "pg-life", **POLL).result()
    assert pg.servers.get("rg-life", "pg-life").state == "Ready"
    pg.servers.begin_restart("rg-life", "pg-life", {"restartWithFailover": False}, **POLL).result()
    assert pg.servers.get("rg-life", "pg-life").state == "Ready"

    actions = [e for e in _events(arm, server.id) if e["eventType"] == "Microsoft.Resources.ResourceActionSuccess"]
    assert {e["data"]["operationName"] for e in actions} == ACTION_NAMES
    assert all(e["data"]["status"] == "Succeeded" for e in actions)

    specs = SpecSet(specs_dir, [specs_dir / f for f in PG_SPECS])
    exchanges = [
        e
        for e in read_jsonl(session_dir / "traffic.jsonl")
        if urlsplit(e["request"]["url"]).path.lower().startswith(server.id.lower() + "/")
        and e["request"]["method"] == "POST"
    ]
    assert {urlsplit(e["request"]["url"]).path.rsplit("/", 1)[1] for e in exchanges} == {"stop", "start", "restart"}
    for entry in exchanges:
        op, errors = specs.check_exchange(entry)
        assert op is not None and op.operation_id.startswith("Servers_")
        assert errors == [], (entry["request"]["url"], errors)


def test_a_stopped_server_starts_by_itself(sdk: dict[str, Any], arm: Arm) -> None:
    """Azure starts a server left stopped for seven days; the knob shortens the week for the test."""
    pg = sdk["postgres"]
    sdk_server(sdk, "rg-auto", "pg-auto")
    arm.admin("PATCH", "config", {"stopped_auto_start_s": 60}).raise_for_status()
    try:
        pg.servers.begin_stop("rg-auto", "pg-auto", **POLL).result()
    finally:
        arm.admin("PATCH", "config", {"stopped_auto_start_s": 7 * 86400}).raise_for_status()
    assert pg.servers.get("rg-auto", "pg-auto").state == "Stopped"
    arm.advance(61)
    eventually(lambda: pg.servers.get("rg-auto", "pg-auto").state == "Ready", "the automatic start")


def test_a_new_server_can_answer_404_for_a_while(sdk: dict[str, Any], arm: Arm) -> None:
    """ARM's read side lags the write (Azure/azure-rest-api-specs#19546): GET 404s, listings omit the server."""
    sub = sdk["sub"]
    sdk["resources"].resource_groups.create_or_update("rg-lag", {"location": "westeurope"})
    path = f"/subscriptions/{sub}/resourceGroups/rg-lag/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg-lag"
    arm.admin("PATCH", "config", {"read_after_write_lag_s": 600}).raise_for_status()
    try:
        accepted = arm.call("PUT", path, {"location": "westeurope"}, "2025-08-01")
        assert accepted.status_code == 202
        assert arm.poll_status(accepted.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    finally:
        arm.admin("PATCH", "config", {"read_after_write_lag_s": 0}).raise_for_status()
    missing = arm.call("GET", path, api_version="2025-08-01")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    assert [s.name for s in sdk["postgres"].servers.list_by_resource_group("rg-lag")] == []
    arm.advance(601)
    assert arm.call("GET", path, api_version="2025-08-01").json()["properties"]["state"] == "Ready"


def test_stop_suspend_and_resume_protection_with_the_official_client(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    dp = sdk["dataprotection"]
    sdk_protected(sdk, arm, "rg-bi-life")
    rg = "rg-bi-life"
    dp.backup_instances.begin_suspend_backups(rg, "vault", "bi", NO_GUARD, **POLL).result()
    assert sdk_state(dp, rg) == "BackupSchedulesSuspended"
    with pytest.raises(HttpResponseError) as refused:  # a suspended instance cannot be "resumed" from stopped
        dp.backup_instances.begin_resume_protection(rg, "vault", "bi", **POLL).result()
    assert refused.value.error is not None
    assert refused.value.error.code == "UserErrorInvalidOperationForCurrentProtectionState"
    dp.backup_instances.begin_resume_backups(rg, "vault", "bi", **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionConfigured"
    dp.backup_instances.begin_stop_protection(rg, "vault", "bi", NO_GUARD, **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionStopped"
    got = dp.backup_instances.get(rg, "vault", "bi")
    assert got.properties.protection_status.status == "ProtectionStopped"

    # A PUT does not resume protection, and one that changes the policy is refused until it is resumed.
    body = {k: v for k, v in got.as_dict()["properties"].items() if k not in READ_ONLY}  # as a careful client
    body["policyInfo"] = {"policyId": body["policyInfo"]["policyId"].replace("/weekly", "/other")}
    dp.backup_policies.create_or_update(rg, "vault", "other", _policy())
    with pytest.raises(HttpResponseError) as not_now:
        dp.backup_instances.begin_create_or_update(rg, "vault", "bi", {"properties": body}, **POLL).result()
    assert not_now.value.error is not None
    assert not_now.value.error.code == "UserErrorBackupInstanceNotInValidStateForUpdate"
    dp.backup_instances.begin_resume_protection(rg, "vault", "bi", **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionConfigured"

    specs = SpecSet(specs_dir, [specs_dir / DP_SPEC])
    exchanges = [
        e
        for e in read_jsonl(session_dir / "traffic.jsonl")
        if "/rg-bi-life/" in e["request"]["url"].lower()
        and any(verb in e["request"]["url"] for verb in (*ACTION_VERBS, "/operationResults/", "/operationStatus/"))
    ]
    assert {v for v in ACTION_VERBS if any(v in e["request"]["url"] for e in exchanges)} == set(ACTION_VERBS)
    for entry in exchanges:
        op, errors = specs.check_exchange(entry)
        if op is None:  # the resource-group-scoped result URL is in the examples' headers, not in the spec paths
            assert (
                "/resourceGroups/rg-bi-life/providers/Microsoft.DataProtection/backupInstances/"
                in entry["request"]["url"]
            )
            continue
        assert errors == [], (entry["request"]["url"], errors)


DP_SPEC = (
    "dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/stable/2026-06-01/dataprotection.json"
)
READ_ONLY = {"provisioningState", "protectionStatus", "currentProtectionState", "protectionErrorDetails"}
ACTION_VERBS = ("/stopProtection", "/suspendBackups", "/resumeProtection", "/resumeBackups")


def _policy() -> dict[str, Any]:
    from tests.emulator.helpers import policy_body

    return policy_body()


def test_soft_delete_undelete_and_purge_with_the_official_client(
    sdk: dict[str, Any], arm: Arm, specs_dir: Path, session_dir: Path
) -> None:
    from tests.emulator.helpers import instance

    dp, rg = sdk["dataprotection"], "rg-soft"
    sdk_protected(sdk, arm, rg)
    # A short retention (the spec's type is a double), so the purge can be reached on the emulator's clock.
    soft = {"softDeleteSettings": {"state": "On", "retentionDurationInDays": 0.01}}
    storage = [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]
    properties = {"storageSettings": storage, "securitySettings": soft}
    body = {"location": "westeurope", "identity": {"type": "SystemAssigned"}, "properties": properties}
    dp.backup_vaults.begin_create_or_update(rg, "vault", body, **POLL).result()
    kept = dp.backup_instances.get(rg, "vault", "bi")
    dp.backup_instances.begin_delete(rg, "vault", "bi", **POLL).result()
    assert list(dp.backup_instances.list(rg, "vault")) == []
    (deleted,) = list(dp.deleted_backup_instances.list(rg, "vault"))
    assert deleted.name == "bi" and deleted.properties.deletion_info.scheduled_purge_time
    assert dp.deleted_backup_instances.get(rg, "vault", "bi").properties.protection_status.status == "SoftDeleted"

    bi = instance(kept.properties.data_source_info.resource_id, kept.properties.policy_info.policy_id)
    with pytest.raises(HttpResponseError) as refused:  # protecting it again while soft-deleted (approximation)
        dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": bi}, **POLL).result()
    assert refused.value.error is not None and refused.value.error.code == "UserErrorDppDatasourceInSoftDeletedState"

    dp.deleted_backup_instances.begin_undelete(rg, "vault", "bi", **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionStopped"  # undeleted: recovery points back, protection stopped
    dp.backup_instances.begin_resume_protection(rg, "vault", "bi", **POLL).result()
    assert sdk_state(dp, rg) == "ProtectionConfigured"

    dp.backup_instances.begin_delete(rg, "vault", "bi", **POLL).result()
    assert len(list(dp.deleted_backup_instances.list(rg, "vault"))) == 1
    arm.advance(0.01 * 86400 + 5)
    eventually(lambda: list(dp.deleted_backup_instances.list(rg, "vault")) == [], "the purge")

    specs = SpecSet(specs_dir, [specs_dir / DP_SPEC])
    exchanges = [
        e for e in read_jsonl(session_dir / "traffic.jsonl") if "/deletedbackupinstances" in e["request"]["url"].lower()
    ]
    assert {e["request"]["method"] for e in exchanges} == {"GET", "POST"}
    for entry in exchanges:
        op, errors = specs.check_exchange(entry)
        assert op is not None and op.operation_id.startswith("DeletedBackupInstances_")
        assert errors == [], (entry["request"]["url"], errors)
