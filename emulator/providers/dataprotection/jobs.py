"""Backup and restore jobs, recovery points and the backup schedule of a PostgreSQL flexible server instance.

Why its own module: protection (validate, PUT, stop/suspend/resume) decides whether an instance is configured;
this module decides what happens afterwards, when nobody is watching: scheduled and ad-hoc backups run as jobs in
`backupJobs`, succeed into `recoveryPoints` or fail the way Azure documents, and recovery points restore as files.

- Schedule: the first backup starts `latency_s.first_backup_after` after protection is configured, then one every
  period of the policy's `repeatingTimeIntervals` (P1W for this datasource), on the emulator's clock. Jobs start
  only while the instance is `ProtectionConfigured` or `ProtectionError` (not while stopped or suspended).
- A backup job decides its outcome when it ends (`latency_s.backup_job_duration`), in this order: a failure the
  admin API queued for the server; server gone; server not `Ready` (`ServerNotReadyForLongTermBackup` under
  `PostgreSQLFlexOperationFailedUserError`); server over 1 TB (vaulted backups support up to 1 TB: configuring
  succeeds, every job fails); the instance's identity lost its roles (`UserErrorMSIMissingPermissions`, and the
  instance shows `ProtectionError` until a backup succeeds again).
- A recovery point is kept for the default retention rule's duration, then expires.
- Restore: only "restore as files" (`RestoreFilesTargetInfo` to a blob container), the one restore this datasource
  supports from the vault. It runs as a restore job; the identity needs Storage Blob Data Contributor on the target.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.errors import ArmError, BadRequest
from emulator.core.store import Record, State
from emulator.providers.authorization.models import OWNER, RoleAssignments
from emulator.providers.dataprotection import vault_identity

JOB_TYPE = "Microsoft.DataProtection/backupVaults/backupJobs"
RP_TYPE = "Microsoft.DataProtection/backupVaults/backupInstances/recoveryPoints"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
RESTORE_ROLES = {STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_OWNER, OWNER}
MAX_VAULTED_GB = 1024
RUNS_WHILE = frozenset({"ProtectionConfigured", "ProtectionError"})
FLEX_FAILED = "PostgreSQLFlexOperationFailedUserError"
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)
CanBackUp = Callable[[str | None, Record], bool]


def duration_s(text: str) -> float | None:
    """Seconds in an ISO 8601 duration (P1W, P3M, PT4H); months as 30 days. None when it does not parse."""
    m = _DURATION.match(text.strip().upper())
    if m is None or not any(m.groups()):
        return None
    return float(sum(int(g) * unit for g, unit in zip(m.groups(), _UNITS, strict=True) if g))


def schedule_period_s(policy: Record | None) -> float:
    """The period of the policy's first backup schedule (`R/<start>/P1W` -> one week); a week when unreadable."""
    for rule in ((policy or {}).get("properties") or {}).get("policyRules") or []:
        if not isinstance(rule, dict) or rule.get("objectType") != "AzureBackupRule":
            continue
        intervals = ((rule.get("trigger") or {}).get("schedule") or {}).get("repeatingTimeIntervals") or []
        for interval in intervals:
            seconds = duration_s(str(interval).rsplit("/", 1)[-1])
            if seconds:
                return seconds
    return 7 * 86400.0


def retention_s(policy: Record | None) -> float:
    """How long the default retention rule keeps a recovery point in the vault store (3 months when unreadable)."""
    for rule in ((policy or {}).get("properties") or {}).get("policyRules") or []:
        if isinstance(rule, dict) and rule.get("objectType") == "AzureRetentionRule" and rule.get("isDefault"):
            for lifecycle in rule.get("lifecycles") or []:
                seconds = duration_s(str(((lifecycle or {}).get("deleteAfter") or {}).get("duration", "")))
                if seconds:
                    return seconds
    return 90 * 86400.0


def backup_rule_names(policy: Record | None) -> list[str]:
    return [
        str(r.get("name"))
        for r in ((policy or {}).get("properties") or {}).get("policyRules") or []
        if isinstance(r, dict) and r.get("objectType") == "AzureBackupRule"
    ]


def job_error(code: str, message: str, action: str, *, inner: str | None = None, retryable: bool) -> dict[str, Any]:
    """A job's `errorDetails` entry (UserFacingError), with the specific cause as `innerError.code`."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "recommendedAction": [action],
        "isRetryable": retryable,
        "isUserError": True,
        "target": "",
        "properties": {},
    }
    if inner:
        error["innerError"] = {"code": inner, "additionalInfo": {}}
    return error


class Jobs:
    """Jobs and recovery points of every vault; `can_back_up` is the protection model's role check."""

    def __init__(
        self,
        state: State,
        clock: Clock,
        config: dict[str, Any],
        rbac: RoleAssignments,
        can_back_up: CanBackUp,
        on_action: Callable[[str, Callable[[str], None]], None],
    ) -> None:
        self.state = state
        self.clock = clock
        self.config = config
        self.rbac = rbac
        self.can_back_up = can_back_up
        on_action("dp.schedule", self._scheduled)
        on_action("dp.backup_done", self._backup_done)
        on_action("dp.restore_done", self._restore_done)
        on_action("dp.rp_expire", self._rp_expire)

    def _latency(self, name: str) -> float:
        return float(self.config["latency_s"][name])

    # -- schedule --------------------------------------------------------------------------------------
    def start_schedule(self, instance: Record) -> None:
        """(Re)start an instance's backup schedule; an older chain of the same instance stops at its next tick."""
        generation = str(uuid.uuid4())
        instance["schedule"] = generation
        due = self.clock.due(self._latency("first_backup_after"))
        self.state.schedule(due, "dp.schedule", f"{ids.key(instance['id'])}|{generation}")

    def _scheduled(self, key: str) -> None:
        instance_key, _, generation = key.rpartition("|")
        instance = self.state.get("instances", instance_key)
        parked = self.state.get("deleted_instances", instance_key)
        record = instance or parked
        if record is None or record.get("schedule") != generation:
            return  # purged, or re-configured with a new chain
        policy = self.state.get("policies", ids.key(str(record["properties"]["policyInfo"].get("policyId", ""))))
        with self.state.lock:
            if instance is not None and instance["properties"]["currentProtectionState"] in RUNS_WHILE:
                rule = (backup_rule_names(policy) or ["BackupWeekly"])[0]
                self.start_backup(instance, rule=rule, tag="Default", user_triggered=False)
            self.state.schedule(self.clock.due(schedule_period_s(policy)), "dp.schedule", key)

    # -- backup jobs -----------------------------------------------------------------------------------
    def _new_job(self, instance: Record, operation: str, user_triggered: bool, **extra: Any) -> Record:
        job_id = str(uuid.uuid4())
        props = instance["properties"]
        policy_id = str(props.get("policyInfo", {}).get("policyId", ""))
        job: Record = {
            "id": f"{instance['vault_id']}/backupJobs/{job_id}",
            "name": job_id,
            "instance_key": ids.key(instance["id"]),
            "instance_id": instance["id"],
            "friendly_name": props.get("friendlyName", instance["name"]),
            "datasource": dict(props.get("dataSourceInfo") or {}),
            "policy_id": policy_id,
            "operation": operation,
            "user_triggered": user_triggered,
            "status": "InProgress",
            "start": self.clock.now(),
            "end": None,
            "errors": [],
            **extra,
        }
        self.state.put("jobs", ids.key(job["id"]), job, [("jobs_by_vault", ids.key(instance["vault_id"]))])
        return job

    def start_backup(self, instance: Record, *, rule: str, tag: str, user_triggered: bool) -> Record:
        job = self._new_job(instance, "Backup", user_triggered, rule=rule, tag=tag)
        self.state.schedule(self.clock.due(self._latency("backup_job_duration")), "dp.backup_done", ids.key(job["id"]))
        return job

    def _backup_done(self, job_key: str) -> None:
        job = self.state.get("jobs", job_key)
        if job is None or job["status"] != "InProgress":
            return
        instance = self.state.get("instances", job["instance_key"])
        with self.state.lock:
            job["end"] = self.clock.now()
            if instance is None:
                job["status"] = "Cancelled"  # the instance was deleted while the job ran
                self.state.touch()
                return
            error = self._backup_error(instance)
            if error is not None:
                job["status"], job["errors"] = "Failed", [error]
                if error["code"] == "UserErrorMSIMissingPermissions":
                    self._set_error(instance, error)
            else:
                job["status"] = "Completed"
                rp = self._recovery_point(instance, job)
                job["recovery_point"] = rp["name"]
                if instance["properties"]["currentProtectionState"] == "ProtectionError":
                    self._set_error(instance, None)
            self.state.touch()

    @staticmethod
    def _set_error(instance: Record, error: dict[str, Any] | None) -> None:
        props = instance["properties"]
        if error is None:
            props["currentProtectionState"] = "ProtectionConfigured"
            props["protectionStatus"] = {"status": "ProtectionConfigured"}
            props.pop("protectionErrorDetails", None)
            return
        if props["currentProtectionState"] not in RUNS_WHILE:
            return
        props["currentProtectionState"] = "ProtectionError"
        props["protectionStatus"] = {"status": "ProtectionError", "errorDetails": error}
        props["protectionErrorDetails"] = error

    def _backup_error(self, instance: Record) -> dict[str, Any] | None:
        server_id = str(instance["properties"]["dataSourceInfo"].get("resourceID", ""))
        queued = self._take_queued_failure(server_id)
        if queued is not None:
            return queued
        server = self.state.get("servers", ids.key(server_id))
        if server is None:
            return job_error(
                "UserErrorDatasourceNotFound", "The datasource of the backup instance was not found.",
                "Check that the server exists, or stop protection.", retryable=False,
            )  # fmt: skip
        state = server["properties"].get("state")
        if state != "Ready":
            return job_error(
                FLEX_FAILED, f"The server is in state '{state}'; a long-term backup needs it Ready.",
                "Start the server (or wait until it is Ready); the next scheduled backup will run.",
                inner="ServerNotReadyForLongTermBackup", retryable=True,
            )  # fmt: skip
        size = int(((server["properties"].get("storage") or {}).get("storageSizeGB")) or 0)
        if size > MAX_VAULTED_GB:
            return job_error(
                FLEX_FAILED, f"The server's storage is {size} GB; vaulted backups support servers up to 1 TB.",
                "Reduce the server's storage to 1 TB or less, or protect it by other means.",
                inner="UserErrorServerSizeNotSupportedForVaultedBackup", retryable=False,
            )  # fmt: skip
        vault = self.state.get("vaults", ids.key(instance["vault_id"]))
        principal = vault_identity.principal_for(vault, instance["properties"].get("identityDetails"))
        if not self.can_back_up(principal, server):
            return job_error(
                "UserErrorMSIMissingPermissions",
                "The Backup vault's managed identity is missing permissions on the datasource or its resource group.",
                "Grant the vault identity the PostgreSQL Flexible Server Long Term Retention Backup role on the "
                "server and Reader on its resource group, then retry.",
                retryable=False,
            )
        return None

    # -- failures queued by the admin API --------------------------------------------------------------
    def queue_failure(self, server_id: str, code: str, message: str, inner: str | None, count: int) -> Record:
        """Fail the next `count` backup jobs of a server with this error (admin API; for scenario tests)."""
        record: Record = {
            "server": server_id, "code": code, "message": message, "inner": inner, "remaining": max(1, count),
        }  # fmt: skip
        self.state.put("job_faults", ids.key(server_id), record)
        return record

    def _take_queued_failure(self, server_id: str) -> dict[str, Any] | None:
        queued = self.state.get("job_faults", ids.key(server_id))
        if queued is None:
            return None
        queued["remaining"] -= 1
        if queued["remaining"] <= 0:
            self.state.delete("job_faults", ids.key(server_id))
        return job_error(
            queued["code"], queued["message"], "Retry the operation.", inner=queued.get("inner"), retryable=True
        )

    # -- recovery points -------------------------------------------------------------------------------
    def _recovery_point(self, instance: Record, job: Record) -> Record:
        rp_id = str(uuid.uuid4())
        policy = self.state.get("policies", ids.key(job["policy_id"]))
        now = self.clock.now()
        keep = retention_s(policy)
        rp: Record = {
            "id": f"{instance['id']}/recoveryPoints/{rp_id}",
            "name": rp_id,
            "instance_key": job["instance_key"],
            "time": now,
            "expiry": now + self.clock.real(keep),
            "policy_name": job["policy_id"].rsplit("/", 1)[-1],
            "tag": job.get("tag", "Default"),
            "job": job["name"],
        }
        self.state.put("recovery_points", ids.key(rp["id"]), rp, [("rps_by_instance", job["instance_key"])])
        self.state.schedule(self.clock.due(keep), "dp.rp_expire", ids.key(rp["id"]))
        return rp

    def _rp_expire(self, rp_key: str) -> None:
        self.state.delete("recovery_points", rp_key)

    def purge_recovery_points(self, instance_key: str) -> None:
        for k in list(self.state.members("rps_by_instance", instance_key)):
            self.state.delete("recovery_points", k)

    def recovery_points(self, instance_key: str) -> list[Record]:
        rps = [
            r
            for k in self.state.members("rps_by_instance", instance_key)
            if (r := self.state.get("recovery_points", k))
        ]
        return sorted(rps, key=lambda r: r["time"], reverse=True)

    def recovery_point(self, instance: Record, rp_id: str) -> Record:
        rp = self.state.get("recovery_points", ids.key(f"{instance['id']}/recoveryPoints/{rp_id}"))
        if rp is None:
            raise ArmError(
                f"Recovery point '{rp_id}' was not found for backup instance '{instance['name']}'.",
                code="UserErrorRecoveryPointNotFound",
                status=404,
            )
        return rp

    def render_recovery_point(self, rp: Record) -> dict[str, Any]:
        created, expiry = self.clock.iso(rp["time"]), self.clock.iso(rp["expiry"])
        store = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, rp["id"])), "type": "VaultStore", "creationTime": created,
                 "expiryTime": expiry, "metaData": "", "visible": True, "state": "COMMITTED"}  # fmt: skip
        return {
            "id": rp["id"],
            "name": rp["name"],
            "type": RP_TYPE,
            "properties": {
                "objectType": "AzureBackupDiscreteRecoveryPoint",
                "friendlyName": rp["name"],
                "recoveryPointId": rp["name"],
                "recoveryPointTime": self.clock.iso(rp["time"]),
                "recoveryPointType": "Full",
                "recoveryPointState": "Completed",
                "recoveryPointDataStoresDetails": [store],
                "policyName": rp["policy_name"],
                "policyVersion": "1.0",
                "retentionTagName": rp["tag"],
                "retentionTagVersion": "1",
                "expiryTime": expiry,
            },
        }

    # -- restore ---------------------------------------------------------------------------------------
    def check_restore(self, vault: Record, instance: Record, request: Any) -> Record:
        """Synchronous rules of validateRestore and restore; returns the recovery point restored from."""
        if not isinstance(request, dict):
            raise BadRequest("The restore request must be an object.", code="UserErrorInvalidRequestParameter")
        kind = request.get("objectType")
        if kind != "AzureBackupRecoveryPointBasedRestoreRequest":
            raise BadRequest(
                f"Restore request type '{kind}' is not supported for this datasource; restore a recovery point "
                "(AzureBackupRecoveryPointBasedRestoreRequest).",
                code="UserErrorRestoreTypeNotSupported",
            )
        if request.get("sourceDataStoreType") != "VaultStore":
            raise BadRequest("Only the VaultStore can be restored from.", code="UserErrorInvalidRequestParameter")
        target = request.get("restoreTargetInfo")
        if not isinstance(target, dict) or target.get("objectType") != "RestoreFilesTargetInfo":
            raise BadRequest(
                "Azure Database for PostgreSQL flexible servers restore from the vault as files only "
                "(restoreTargetInfo.objectType RestoreFilesTargetInfo).",
                code="UserErrorRestoreTypeNotSupported",
            )
        details = target.get("targetDetails")
        url = str((details or {}).get("url", "")) if isinstance(details, dict) else ""
        parts = urlsplit(url)
        if (
            not isinstance(details, dict)
            or details.get("restoreTargetLocationType") != "AzureBlobs"
            or not str(details.get("filePrefix") or "")
            or parts.scheme != "https"
            or not parts.hostname
            or parts.path.strip("/").count("/") != 0
            or not parts.path.strip("/")
        ):
            raise BadRequest(
                "targetDetails needs restoreTargetLocationType AzureBlobs, a filePrefix and the https URL of a blob "
                "container (https://<account>.blob.core.windows.net/<container>).",
                code="UserErrorInvalidRestoreTargetDetails",
            )
        vault_identity.check_details(vault, request.get("identityDetails"))
        return self.recovery_point(instance, str(request.get("recoveryPointId", "")))

    def restore_error(self, vault: Record | None, instance: Record, request: dict[str, Any]) -> dict[str, Any] | None:
        """The asynchronous rule: the restoring identity needs a blob data role on the target container."""
        details = request.get("identityDetails", instance["properties"].get("identityDetails"))
        principal = vault_identity.principal_for(vault, details)
        target_id = str(request["restoreTargetInfo"]["targetDetails"].get("targetResourceArmId") or "")
        if not target_id:
            return None  # approximation: without the container's ARM id the emulator cannot place the role check
        if principal and self.rbac.has_role(principal, RESTORE_ROLES, target_id):
            return None
        return job_error(
            "UserErrorMissingRequiredPermissions",
            "The Backup vault's managed identity cannot write to the restore target container.",
            "Grant the vault identity Storage Blob Data Contributor on the target storage account or container.",
            retryable=False,
        )

    def start_restore(self, instance: Record, request: dict[str, Any], rp: Record) -> Record:
        details = request["restoreTargetInfo"]["targetDetails"]
        job = self._new_job(
            instance, "Restore", True, restore=request, recovery_point=rp["name"], recovery_point_time=rp["time"],
            destination=str(details["url"]),
        )  # fmt: skip
        self.state.schedule(
            self.clock.due(self._latency("restore_job_duration")), "dp.restore_done", ids.key(job["id"])
        )
        return job

    def _restore_done(self, job_key: str) -> None:
        job = self.state.get("jobs", job_key)
        if job is None or job["status"] != "InProgress":
            return
        instance = self.state.get("instances", job["instance_key"])
        vault = self.state.get("vaults", ids.key(job["id"].rsplit("/backupJobs/", 1)[0]))
        with self.state.lock:
            job["end"] = self.clock.now()
            queued = self._take_queued_failure(str(job["datasource"].get("resourceID", "")))
            error = queued or (self.restore_error(vault, instance, job["restore"]) if instance else None)
            if error is not None:
                job["status"], job["errors"] = "Failed", [error]
            else:
                prefix = str(job["restore"]["restoreTargetInfo"]["targetDetails"]["filePrefix"])
                job["status"], job["files"] = "Completed", [f"{prefix}_postgres.sql", f"{prefix}_roles.sql"]
            self.state.touch()

    # -- rendering -------------------------------------------------------------------------------------
    def list(self, vault_id: str) -> list[Record]:
        return [r for k in self.state.members("jobs_by_vault", ids.key(vault_id)) if (r := self.state.get("jobs", k))]

    def get(self, vault_id: str, job_id: str) -> Record:
        record = self.state.get("jobs", ids.key(f"{vault_id}/backupJobs/{job_id}"))
        if record is None:
            raise ArmError(f"Job '{job_id}' was not found.", code="UserErrorJobNotFound", status=404)
        return record

    def render(self, job: Record) -> dict[str, Any]:
        ds = job.get("datasource") or {}
        vault_parts = ids.parts(job["id"].rsplit("/backupJobs/", 1)[0])
        server_parts = ids.parts(str(ds.get("resourceID", "")))
        restore = job["operation"] == "Restore"
        body: dict[str, Any] = {
            "activityID": job["name"],
            "backupInstanceFriendlyName": job.get("friendly_name", ""),
            "backupInstanceId": job.get("instance_id", ""),
            "dataSourceId": ds.get("resourceID", ""),
            "dataSourceLocation": ds.get("resourceLocation", ""),
            "dataSourceName": ds.get("resourceName", server_parts.get("name", "")),
            "dataSourceSetName": ds.get("resourceName", ""),
            "dataSourceType": ds.get("datasourceType", ""),
            "isUserTriggered": bool(job.get("user_triggered")),
            "operation": job["operation"],
            "operationCategory": job["operation"],
            "progressEnabled": False,
            "sourceResourceGroup": server_parts.get("resource_group", ""),
            "sourceSubscriptionID": server_parts.get("subscription", ""),
            "startTime": self.clock.iso(job["start"]),
            "status": job["status"],
            "subscriptionId": vault_parts.get("subscription", ""),
            "supportedActions": [],
            "vaultName": vault_parts.get("name", ""),
            "policyId": job.get("policy_id", ""),
            "policyName": str(job.get("policy_id", "")).rsplit("/", 1)[-1],
        }
        extended: dict[str, Any] = {"additionalDetails": {"PolicyRuleName": str(job.get("rule", ""))}}
        if restore:
            body["restoreType"] = "RestoreAsFiles"
            extended = {
                "additionalDetails": {"RestoredFiles": ",".join(job.get("files") or [])},
                "recoveryDestination": job.get("destination", ""),
                "sourceRecoverPoint": {
                    "recoveryPointID": job.get("recovery_point", ""),
                    "recoveryPointTime": self.clock.iso(float(job.get("recovery_point_time") or 0)),
                },
            }
        elif job.get("recovery_point"):
            extended["additionalDetails"]["RecoveryPointId"] = job["recovery_point"]
        body["extendedInfo"] = extended
        if job.get("errors"):
            body["errorDetails"] = job["errors"]
        if job["end"]:
            body["endTime"] = self.clock.iso(job["end"])
            body["duration"] = f"PT{max(0, int(job['end'] - job['start']))}S"
        return {"properties": body, "id": job["id"], "name": job["name"], "type": JOB_TYPE}
