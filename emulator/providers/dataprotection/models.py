"""Microsoft.DataProtection: backup vaults, policies, instances, jobs and the service rules for PostgreSQL
flexible servers.

Rules (each raises the service's error; see docs/EMULATOR.md for which codes are verbatim and which are close
approximations):
- synchronous 400 on validate and PUT: request shape, datasource type, policy missing or for another datasource
  type, server missing, vault in another region, datasource already protected in any vault
  (`UserErrorDppDatasourceAlreadyProtected`, naming the vault);
- asynchronous Failed operation (decided when the operation completes): server not Ready, replica server, vault
  MSI missing the PostgreSQL LTR backup role on the server or Reader on its resource group
  (`UserErrorMissingRequiredPermissions`, with `additionalInfo[].info`).
After a create operation Succeeded the instance stays `ConfiguringProtection` for `latency_s.protection_configure`,
then becomes `ProtectionConfigured`; the first scheduled backup job starts `latency_s.first_backup_after` later.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.errors import ArmError, BadRequest, InvalidRequestContent, ResourceNotFound, user_facing_info
from emulator.core.operations import Operations
from emulator.core.store import Record, State
from emulator.eventgrid import EventBus
from emulator.providers.authorization.models import CONTRIBUTOR, OWNER, PG_LTR_BACKUP, READER, RoleAssignments
from emulator.providers.dataprotection import vault_identity
from emulator.providers.dataprotection.jobs import RUNS_WHILE, Jobs, backup_rule_names
from emulator.providers.postgresql.models import SERVER_TYPE, Servers
from emulator.providers.resources.models import ResourceGroups

NS = "Microsoft.DataProtection"
VAULT_TYPE = f"{NS}/backupVaults"
POLICY_TYPE = f"{VAULT_TYPE}/backupPolicies"
INSTANCE_TYPE = f"{VAULT_TYPE}/backupInstances"
JOB_TYPE = f"{VAULT_TYPE}/backupJobs"
PG_FLEX = SERVER_TYPE
SERVER_ROLES = {PG_LTR_BACKUP, OWNER, CONTRIBUTOR}
RG_ROLES = {READER, OWNER, CONTRIBUTOR}
READ_ONLY_INSTANCE_FIELDS = (
    "protectionStatus",
    "currentProtectionState",
    "protectionErrorDetails",
    "provisioningState",
)
# POST actions on an instance: the states each may start from, and the state it leaves the instance in. While
# the operation runs the instance is UpdatingProtection. Only resumeProtection/resumeBackups undo a stop or a
# suspension; a PUT does not (Terraform's resource and the REST reference say so).
INSTANCE_ACTIONS: dict[str, tuple[str, frozenset[str], str]] = {
    "stopprotection": (
        "stopProtection",
        frozenset(
            {"ProtectionConfigured", "BackupSchedulesSuspended", "RetentionSchedulesSuspended", "ProtectionError"}
        ),
        "ProtectionStopped",
    ),
    "suspendbackups": (
        "suspendBackups",
        frozenset({"ProtectionConfigured", "ProtectionError"}),
        "BackupSchedulesSuspended",
    ),
    "resumeprotection": ("resumeProtection", frozenset({"ProtectionStopped"}), "ProtectionConfigured"),
    "resumebackups": (
        "resumeBackups",
        frozenset({"BackupSchedulesSuspended", "RetentionSchedulesSuspended"}),
        "ProtectionConfigured",
    ),
}
# protectionStatus.status has fewer values than currentProtectionState (spec enum `Status`).
STATUS_OF = {
    "BackupSchedulesSuspended": "ProtectionStopped",
    "RetentionSchedulesSuspended": "ProtectionStopped",
    "UpdatingProtection": "ConfiguringProtection",
    "ProtectionError": "ConfiguringProtectionFailed",
}
# A recovery point can be restored while the instance exists, whether or not new backups are taken.
RESTORABLE = frozenset(
    {"ProtectionConfigured", "ProtectionError", "ProtectionStopped", "BackupSchedulesSuspended",
     "RetentionSchedulesSuspended"}
)  # fmt: skip
# An existing instance accepts a changing PUT only once configured (or after configuring failed, to fix it).
CHANGEABLE_STATES = frozenset({"ProtectionConfigured", "ConfiguringProtectionFailed", "ProtectionError"})
PERMISSION_ACTION = (
    "Grant appropriate permissions to perform this operation as mentioned at "
    "https://aka.ms/UserErrorMissingRequiredPermissions and retry the operation."
)


def vault_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{VAULT_TYPE}/{name}"


def _loc(value: str) -> str:
    return value.replace(" ", "").lower()


def op_error(code: str, message: str, action: str, *, retryable: bool) -> dict[str, Any]:
    """A Failed operation's `error` with Data Protection's UserFacingError additional info."""
    return {
        "code": code,
        "message": message,
        "additionalInfo": [user_facing_info(code, message, action, retryable=retryable)],
    }


class DataProtection:
    def __init__(
        self,
        state: State,
        clock: Clock,
        operations: Operations,
        events: EventBus,
        rgs: ResourceGroups,
        servers: Servers,
        rbac: RoleAssignments,
        config: dict[str, Any],
        tenant_id: str,
    ) -> None:
        self.state = state
        self.clock = clock
        self.ops = operations
        self.events = events
        self.rgs = rgs
        self.servers = servers
        self.rbac = rbac
        self.config = config
        self.tenant_id = tenant_id
        operations.on_complete("dp.validate", self._validate_done)
        operations.on_complete("dp.instance_create", self._create_done)
        operations.on_complete("dp.instance_delete", self._delete_done)
        operations.on_complete("dp.instance_action", self._action_done)
        operations.on_complete("dp.undelete", self._undelete_done)
        operations.on_action("dp.purge", self._purge)
        operations.on_complete("dp.adhoc_backup", self._adhoc_done)
        operations.on_complete("dp.sync", self._sync_done)
        operations.on_complete("dp.validate_restore", self._validate_restore_done)
        operations.on_complete("dp.restore", self._restore_done)
        operations.on_action("dp.configured", self._configured)
        self.jobs = Jobs(state, clock, config, rbac, self.can_back_up, operations.on_action)

    def _vault_op(
        self,
        kind: str,
        latency: str,
        v: Record,
        sub: str,
        rg: str,
        vault: str,
        ectx: dict[str, Any],
        fault: dict[str, Any] | None,
        **keys: Any,
    ) -> Record:
        """An async operation in a vault's scope: status served at location, vault and resource-group scope."""
        return self.ops.create(
            kind,
            self._latency(latency),
            provider="dataprotection",
            subscription=sub,
            resource_group=rg,
            vault=vault,
            location=v["location"],
            vault_key=ids.key(v["id"]),
            ectx=ectx,
            fault=fault,
            **keys,
        )

    def _latency(self, name: str) -> float:
        return float(self.config["latency_s"][name])

    # -- vaults ----------------------------------------------------------------------------------------
    def put_vault(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> tuple[Record, bool]:
        self.rgs.require(sub, rg)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("The 'location' property is required.", code="LocationRequired")
        props = body.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("storageSettings"), list):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'storageSettings' not found in JSON.'"
            )
        rid = vault_id(sub, rg, name)
        k = ids.key(rid)
        with self.state.lock:
            existing = self.state.get("vaults", k)
            if existing is not None and _loc(existing["location"]) != _loc(location):
                raise BadRequest(
                    f"Location '{location}' does not match the vault's location '{existing['location']}'.",
                    code="LocationNotAvailableForResourceType",
                )
            identity = vault_identity.parse(body, existing)
            record: Record = {
                "id": existing["id"] if existing else rid,
                "name": existing["name"] if existing else name,
                "subscription": sub,
                "resource_group": rg,
                "location": location,
                "tags": body.get("tags") or {},
                **identity,
                "properties": {k2: v for k2, v in props.items() if k2 not in ("provisioningState",)},
                "created": existing["created"] if existing else self.clock.now(),
            }
            self.state.put(
                "vaults",
                k,
                record,
                [("vaults_by_sub", sub.lower()), ("vaults_by_rg", ids.key(ids.rg_id(sub, rg)))],
            )
        return record, existing is None

    def vault(self, sub: str, rg: str, name: str) -> Record:
        record = self.state.get("vaults", ids.key(vault_id(sub, rg, name)))
        if record is None:
            self.rgs.require(sub, rg)
            raise ResourceNotFound(
                f"The Resource '{VAULT_TYPE}/{name}' under resource group '{rg}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
        return record

    def delete_vault(self, sub: str, rg: str, name: str) -> Record | None:
        """Synchronous delete; a vault that still has backup instances cannot be deleted."""
        k = ids.key(vault_id(sub, rg, name))
        record = self.state.get("vaults", k)
        if record is None:
            self.rgs.require(sub, rg)
            return None
        with self.state.lock:
            if self.state.count("instances_by_vault", k):
                raise BadRequest(
                    "The Backup vault has protected items and cannot be deleted. Stop protection of all backup "
                    "instances and retry.",
                    code="UserErrorBackupVaultHasBackupInstances",
                )
            for pk in list(self.state.members("policies_by_vault", k)):
                self.state.delete("policies", pk)
            for jk in list(self.state.members("jobs_by_vault", k)):
                self.state.delete("jobs", jk)
            return self.state.delete("vaults", k)

    def render_vault(self, record: Record) -> dict[str, Any]:
        return {
            "identity": vault_identity.render(record, self.tenant_id),
            "properties": {
                **record["properties"],
                "provisioningState": "Succeeded",
                "resourceMoveState": "Unknown",
                "isVaultProtectedByResourceGuard": False,
                "secureScore": "Adequate",
                "bcdrSecurityLevel": "Good",
            },
            "id": record["id"],
            "name": record["name"],
            "type": VAULT_TYPE,
            "location": record["location"],
            "tags": record["tags"],
        }

    def list_vaults(self, index: str, group: str) -> list[Record]:
        return [r for k in self.state.members(index, group) if (r := self.state.get("vaults", k)) is not None]

    # -- policies --------------------------------------------------------------------------------------
    def put_policy(self, sub: str, rg: str, vault: str, name: str, body: dict[str, Any]) -> tuple[Record, bool]:
        v = self.vault(sub, rg, vault)
        props = body.get("properties")
        if not isinstance(props, dict) or not props.get("objectType"):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'objectType' not found in JSON.'"
            )
        if not isinstance(props.get("datasourceTypes"), list) or not props["datasourceTypes"]:
            raise BadRequest("'datasourceTypes' is required.", code="UserErrorInvalidRequestParameter")
        if PG_FLEX.lower() in [str(t).lower() for t in props["datasourceTypes"]]:
            self._check_pg_policy(props)
        rid = f"{v['id']}/backupPolicies/{name}"
        k = ids.key(rid)
        with self.state.lock:
            existing = self.state.get("policies", k)
            record: Record = {"id": existing["id"] if existing else rid, "name": name, "properties": props}
            self.state.put("policies", k, record, [("policies_by_vault", ids.key(v["id"]))])
        return record, existing is None

    @staticmethod
    def _check_pg_policy(props: dict[str, Any]) -> None:
        """PostgreSQL flexible server policies: weekly schedule and vault store only (service constraint)."""
        for rule in props.get("policyRules") or []:
            if not isinstance(rule, dict) or rule.get("objectType") != "AzureBackupRule":
                continue
            store = (rule.get("dataStore") or {}).get("dataStoreType")
            intervals = ((rule.get("trigger") or {}).get("schedule") or {}).get("repeatingTimeIntervals") or []
            if store != "VaultStore" or not intervals or not all(str(i).upper().endswith("/P1W") for i in intervals):
                raise BadRequest(
                    f"Backup rule '{rule.get('name')}' is not supported for {PG_FLEX}: only weekly schedules "
                    "(repeatingTimeIntervals ending in /P1W) on the VaultStore are supported.",
                    code="UserErrorInvalidPolicyForDatasourceType",
                )

    def policy(self, sub: str, rg: str, vault: str, name: str) -> Record:
        v = self.vault(sub, rg, vault)
        record = self.state.get("policies", ids.key(f"{v['id']}/backupPolicies/{name}"))
        if record is None:
            raise ResourceNotFound(
                f"Backup policy '{name}' was not found in vault '{vault}'.", code="UserErrorBackupPolicyNotFound"
            )
        return record

    def delete_policy(self, sub: str, rg: str, vault: str, name: str) -> Record | None:
        v = self.vault(sub, rg, vault)
        return self.state.delete("policies", ids.key(f"{v['id']}/backupPolicies/{name}"))

    def list_policies(self, sub: str, rg: str, vault: str) -> list[Record]:
        v = self.vault(sub, rg, vault)
        return [
            r
            for k in self.state.members("policies_by_vault", ids.key(v["id"]))
            if (r := self.state.get("policies", k)) is not None
        ]

    @staticmethod
    def render_policy(record: Record) -> dict[str, Any]:
        return {"properties": record["properties"], "id": record["id"], "name": record["name"], "type": POLICY_TYPE}

    # -- rules -----------------------------------------------------------------------------------------
    def _check(self, v: Record, bi: dict[str, Any], *, own_instance: str | None = None) -> Record:
        """The synchronous rules shared by validate and PUT; returns the server record."""
        if bi.get("objectType") != "BackupInstance":
            raise BadRequest(
                "The 'objectType' of the backup instance must be 'BackupInstance'.",
                code="UserErrorInvalidRequestParameter",
            )
        ds = bi.get("dataSourceInfo")
        if not isinstance(ds, dict) or not ds.get("resourceID") or not ds.get("objectType"):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'resourceID' (or discriminator 'objectType') not found in JSON. Path "
                "'dataSourceInfo'.'"
            )
        ds_type = str(ds.get("datasourceType", ""))
        if ds_type.lower() != PG_FLEX.lower():
            raise BadRequest(
                f"Datasource type '{ds_type}' is not supported by this emulator.",
                code="UserErrorDatasourceTypeNotSupported",
            )
        policy_id = str((bi.get("policyInfo") or {}).get("policyId", ""))
        policy = self.state.get("policies", ids.key(policy_id)) if policy_id else None
        if policy is None or not ids.key(policy_id).startswith(ids.key(v["id"]) + "/"):
            raise BadRequest(
                f"Backup policy '{policy_id}' was not found in the vault.", code="UserErrorBackupPolicyNotFound"
            )
        types = [str(t).lower() for t in policy["properties"].get("datasourceTypes", [])]
        if PG_FLEX.lower() not in types:
            raise BadRequest(
                f"The backup policy '{policy['name']}' is for datasource types "
                f"{policy['properties'].get('datasourceTypes')} and cannot protect a '{PG_FLEX}'.",
                code="UserErrorPolicyDatasourceTypeMismatch",
            )
        vault_identity.check_details(v, bi.get("identityDetails"))
        server = self.servers.find(str(ds["resourceID"]))
        if server is None:
            raise BadRequest(f"The datasource '{ds['resourceID']}' was not found.", code="UserErrorDatasourceNotFound")
        if _loc(server["location"]) != _loc(v["location"]):
            raise BadRequest(
                f"The datasource location '{server['location']}' does not match the Backup vault location "
                f"'{v['location']}'. The vault must be in the same region as the datasource.",
                code="UserErrorDatasourceAndBackupVaultLocationMismatch",
            )
        for k in self.state.members("instances_by_ds", ids.key(server["id"])):
            if k == own_instance:
                continue
            other = self.state.get("instances", k)
            if other is None:
                continue
            vault_of = other["vault_id"]
            raise BadRequest(
                f"Datasource is already protected under the Backup vault {vault_of}. "
                "Stop protection of the datasource in the other vault and retry.",
                code="UserErrorDppDatasourceAlreadyProtected",
            )
        for k in self.state.members("deleted_by_ds", ids.key(server["id"])):
            deleted = self.state.get("deleted_instances", k)
            if deleted is None:
                continue
            # Approximation (docs/EMULATOR.md): Azure documents that a soft-deleted item keeps its recovery points
            # and can be undeleted, not what a new protection request answers meanwhile; the emulator refuses it.
            raise BadRequest(
                f"The datasource has a soft-deleted backup instance '{deleted['name']}' in the Backup vault "
                f"{deleted['vault_id']}. Undelete it and resume protection, or protect it again after it is purged.",
                code="UserErrorDppDatasourceInSoftDeletedState",
            )
        return server

    def can_back_up(self, principal: str | None, server: Record) -> bool:
        """The roles Azure checks for the identity that backs a server up (at configure and at every job)."""
        rg = ids.rg_id(server["subscription"], server["resource_group"])
        return bool(
            principal
            and self.rbac.has_role(principal, SERVER_ROLES, server["id"])
            and self.rbac.has_role(principal, RG_ROLES, rg)
        )

    def _async_rules(self, v: Record, server_key: str, identity_details: Any) -> dict[str, Any] | None:
        """Rules decided when the operation completes; returns an operation error or None."""
        server = self.state.get("servers", server_key)
        if server is None:
            return op_error(
                "UserErrorDatasourceNotFound",
                "The datasource was not found.",
                "Check that the server exists and retry.",
                retryable=False,
            )
        if server["properties"].get("replicationRole", "Primary") not in ("Primary", "None"):
            return op_error(
                "UserErrorPostgreSQLFlexibleServerReplicaNotSupported",
                "Backup of a read replica is not supported. Protect the primary server instead.",
                "Configure protection for the primary server.",
                retryable=False,
            )
        if server["properties"].get("state") != "Ready":
            return op_error(
                "UserErrorPostgreSQLFlexibleServerNotReady",
                f"The server is in state '{server['properties'].get('state')}'; it must be 'Ready'.",
                "Start the server (or wait until it is Ready) and retry the operation.",
                retryable=True,
            )
        if not self.can_back_up(vault_identity.principal_for(v, identity_details), server):
            return op_error(
                "UserErrorMissingRequiredPermissions",
                "Appropriate permissions to perform the operation is missing.",
                PERMISSION_ACTION,
                retryable=False,
            )
        return None

    # -- validate --------------------------------------------------------------------------------------
    def validate(
        self, sub: str, rg: str, vault: str, body: dict[str, Any], ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        v = self.vault(sub, rg, vault)
        bi = body.get("backupInstance")
        if not isinstance(bi, dict):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'backupInstance' not found in JSON. Path '', line 1, position 1.'"
            )
        server = self._check(v, bi)
        return self._vault_op(
            "dp.validate", "validate", v, sub, rg, vault, ectx, fault,
            server_key=ids.key(server["id"]), identity=bi.get("identityDetails"),
        )  # fmt: skip

    def _validate_done(self, op: Record) -> None:
        v = self.state.get("vaults", op["vault_key"])
        error = self._fault_error(op) or (self._async_rules(v, op["server_key"], op.get("identity")) if v else None)
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        self.ops.finish(op, "Failed" if error else "Succeeded", error)

    @staticmethod
    def _fault_error(op: Record) -> dict[str, Any] | None:
        fault = op.get("fault")
        if not fault:
            return None
        return op_error(fault["code"], fault["message"], "Retry the operation.", retryable=True)

    # -- backup instances ------------------------------------------------------------------------------
    def instance_key(self, sub: str, rg: str, vault: str, name: str) -> str:
        return ids.key(f"{vault_id(sub, rg, vault)}/backupInstances/{name}")

    def put_instance(
        self,
        sub: str,
        rg: str,
        vault: str,
        name: str,
        body: dict[str, Any],
        ectx: dict[str, Any],
        fault: dict[str, Any] | None,
    ) -> tuple[Record, Record | None, bool]:
        """Returns (instance, operation or None when nothing changed, created)."""
        v = self.vault(sub, rg, vault)
        bi = body.get("properties")
        if not isinstance(bi, dict):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'properties' not found in JSON. Path '', line 1, position 1.'"
            )
        k = ids.key(f"{v['id']}/backupInstances/{name}")
        with self.state.lock:
            existing = self.state.get("instances", k)
            server = self._check(v, bi, own_instance=k)
            if existing is not None:
                if ids.key(existing["properties"]["dataSourceInfo"]["resourceID"]) != ids.key(server["id"]):
                    raise BadRequest(
                        "The datasource of an existing backup instance cannot be changed.",
                        code="UserErrorDppDatasourceChangeNotAllowed",
                    )
                same_policy = ids.key(str(existing["properties"]["policyInfo"].get("policyId", ""))) == ids.key(
                    str((bi.get("policyInfo") or {}).get("policyId", ""))
                )
                healthy = existing["properties"]["currentProtectionState"] not in (
                    "ConfiguringProtectionFailed",
                    "ProtectionError",
                )
                # A PUT that changes nothing is a no-op; a new policy re-configures the instance, as in Azure.
                if healthy and same_policy:
                    return existing, None, False
                current = existing["properties"]["currentProtectionState"]
                if current not in CHANGEABLE_STATES:
                    raise BadRequest(
                        f"The backup instance is in state '{current}'; it can be updated only when protection is "
                        "configured. Retry after the current operation completes, or resume protection first.",
                        code="UserErrorBackupInstanceNotInValidStateForUpdate",
                    )
            props = {key: val for key, val in bi.items() if key not in READ_ONLY_INSTANCE_FIELDS}
            props["friendlyName"] = props.get("friendlyName") or name
            props["policyInfo"] = {**props["policyInfo"], "policyVersion": "1.0"}
            props.update(
                {
                    "provisioningState": "Provisioning",
                    "currentProtectionState": "ConfiguringProtection",
                    "protectionStatus": {"status": "ConfiguringProtection"},
                }
            )
            record: Record = {
                "id": existing["id"] if existing else f"{v['id']}/backupInstances/{name}",
                "name": name,
                "vault_id": v["id"],
                "location": v["location"],
                "tags": body.get("tags") or {},
                "properties": props,
                "created": self.clock.now(),
            }
            self.state.put(
                "instances",
                k,
                record,
                [("instances_by_vault", ids.key(v["id"])), ("instances_by_ds", ids.key(server["id"]))],
            )
            op = self._vault_op(
                "dp.instance_create", "instance_create", v, sub, rg, vault, ectx, fault,
                server_key=ids.key(server["id"]), instance_key=k,
            )  # fmt: skip
        return record, op, existing is None

    def _create_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        v = self.state.get("vaults", op["vault_key"])
        if record is None or v is None:
            self.ops.finish(op, "Canceled")
            return
        identity = record["properties"].get("identityDetails")
        error = self._fault_error(op) or self._async_rules(v, op["server_key"], identity)
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        with self.state.lock:
            props = record["properties"]
            if error:
                user_error = error["additionalInfo"][0]["info"]
                props.update(
                    {
                        "provisioningState": "Failed",
                        "currentProtectionState": "ConfiguringProtectionFailed",
                        "protectionStatus": {"status": "ConfiguringProtectionFailed", "errorDetails": user_error},
                        "protectionErrorDetails": user_error,
                    }
                )
            else:
                props.update({"provisioningState": "Succeeded"})
                props.pop("protectionErrorDetails", None)
                self.state.schedule(
                    self.clock.due(self._latency("protection_configure")), "dp.configured", op["instance_key"]
                )
            self.state.touch()
        self.ops.finish(op, "Failed" if error else "Succeeded", error)
        if not error:
            self.events.emit("ResourceWriteSuccess", record["id"], f"{INSTANCE_TYPE}/write", op.get("ectx") or {})

    def _configured(self, key: str) -> None:
        record = self.state.get("instances", key)
        if record is None or record["properties"]["currentProtectionState"] != "ConfiguringProtection":
            return
        with self.state.lock:
            self._set_protection(record, "ProtectionConfigured")
            self.jobs.start_schedule(record)
            self.state.touch()

    def instance(self, sub: str, rg: str, vault: str, name: str) -> Record:
        self.vault(sub, rg, vault)
        record = self.state.get("instances", self.instance_key(sub, rg, vault, name))
        if record is None:
            raise ResourceNotFound(
                f"The Resource '{INSTANCE_TYPE}/{name}' under resource group '{rg}' was not found.",
            )
        return record

    def delete_instance(self, sub: str, rg: str, vault: str, name: str, ectx: dict[str, Any]) -> Record | None:
        v = self.vault(sub, rg, vault)
        k = self.instance_key(sub, rg, vault, name)
        record = self.state.get("instances", k)
        if record is None:
            return None
        with self.state.lock:
            record["properties"]["currentProtectionState"] = "SoftDeleting"
            record["properties"]["protectionStatus"] = {"status": "SoftDeleting"}
            record["properties"]["provisioningState"] = "Deleting"
            return self._vault_op(
                "dp.instance_delete", "instance_delete", v, sub, rg, vault, ectx, None, instance_key=k
            )

    def _delete_done(self, op: Record) -> None:
        """Soft delete (on unless the vault turned it off): the instance moves to deletedBackupInstances with its
        recovery points for the vault's retention (14 days by default), then is purged."""
        record = self.state.delete("instances", op["instance_key"])
        v = self.state.get("vaults", op["vault_key"])
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        days = self.soft_delete_days(v)
        if record is not None and days > 0:
            now = self.clock.now()
            purge = self.clock.due(days * 86400)
            with self.state.lock:
                self._set_protection(record, "SoftDeleted")
                record["properties"]["provisioningState"] = "Succeeded"
                record["deletion"] = {"deleted": now, "purge": purge, "activity": str(uuid.uuid4())}
                ds = ids.key(record["properties"]["dataSourceInfo"]["resourceID"])
                self.state.put(
                    "deleted_instances",
                    op["instance_key"],
                    record,
                    [("deleted_by_vault", ids.key(record["vault_id"])), ("deleted_by_ds", ds)],
                )
                self.state.schedule(purge, "dp.purge", f"{op['instance_key']}|{now}")
        else:
            self.jobs.purge_recovery_points(op["instance_key"])
        self.ops.finish(op, "Succeeded")
        if record is not None:
            self.events.emit("ResourceDeleteSuccess", record["id"], f"{INSTANCE_TYPE}/delete", op.get("ectx") or {})

    @staticmethod
    def soft_delete_days(vault: Record | None) -> float:
        """The vault's soft-delete retention in days; 0 when soft delete is off."""
        settings = ((vault or {}).get("properties") or {}).get("securitySettings") or {}
        soft = settings.get("softDeleteSettings") or {}
        if str(soft.get("state", "On")).lower() == "off":
            return 0.0
        try:
            return max(float(soft.get("retentionDurationInDays", 14)), 0.0)
        except (TypeError, ValueError):
            return 14.0

    def _purge(self, key: str) -> None:
        instance_key, _, deleted_at = key.rpartition("|")
        record = self.state.get("deleted_instances", instance_key)
        if record is not None and str(record.get("deletion", {}).get("deleted")) == deleted_at:
            self.state.delete("deleted_instances", instance_key)
            self.jobs.purge_recovery_points(instance_key)

    # -- soft-deleted instances ------------------------------------------------------------------------
    def deleted_instance(self, sub: str, rg: str, vault: str, name: str) -> Record:
        self.vault(sub, rg, vault)
        record = self.state.get("deleted_instances", self.instance_key(sub, rg, vault, name))
        if record is None:
            raise ResourceNotFound(f"The deleted backup instance '{name}' under vault '{vault}' was not found.")
        return record

    def list_deleted(self, sub: str, rg: str, vault: str) -> list[Record]:
        v = self.vault(sub, rg, vault)
        keys = self.state.members("deleted_by_vault", ids.key(v["id"]))
        return [r for k in keys if (r := self.state.get("deleted_instances", k)) is not None]

    def undelete(self, sub: str, rg: str, vault: str, name: str, ectx: dict[str, Any]) -> Record:
        v = self.vault(sub, rg, vault)
        record = self.deleted_instance(sub, rg, vault, name)
        if self.state.get("instances", self.instance_key(sub, rg, vault, name)) is not None:
            raise ArmError(
                f"A backup instance named '{name}' already exists in the vault.", code="UserErrorConflict", status=409
            )
        return self._vault_op(
            "dp.undelete", "instance_action", v, sub, rg, vault, ectx, None,
            instance_key=ids.key(record["id"]), instance=name,
        )  # fmt: skip

    def _undelete_done(self, op: Record) -> None:
        """An undeleted instance comes back with its recovery points and protection stopped (resume to go on)."""
        record = self.state.delete("deleted_instances", op["instance_key"])
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        with self.state.lock:
            record.pop("deletion", None)
            self._set_protection(record, "ProtectionStopped")
            ds = ids.key(record["properties"]["dataSourceInfo"]["resourceID"])
            self.state.put(
                "instances",
                op["instance_key"],
                record,
                [("instances_by_vault", ids.key(record["vault_id"])), ("instances_by_ds", ds)],
            )
        self.ops.finish(op, "Succeeded")

    def render_deleted(self, record: Record) -> dict[str, Any]:
        deletion = record.get("deletion") or {}
        properties = {**record["properties"], "objectType": "DeletedBackupInstance"}
        properties["deletionInfo"] = {
            "deletionTime": self.clock.iso(float(deletion.get("deleted", 0))),
            "billingEndDate": self.clock.iso(float(deletion.get("purge", 0))),
            "scheduledPurgeTime": self.clock.iso(float(deletion.get("purge", 0))),
            "deleteActivityID": str(deletion.get("activity", "")),
        }
        deleted_id = record["id"].replace("/backupInstances/", "/deletedBackupInstances/")
        return {
            "properties": properties,
            "id": deleted_id,
            "name": record["name"],
            "type": f"{VAULT_TYPE}/deletedBackupInstances",
        }

    def instance_action(
        self,
        sub: str,
        rg: str,
        vault: str,
        name: str,
        action: str,
        ectx: dict[str, Any],
        fault: dict[str, Any] | None,
    ) -> Record:
        """stopProtection / suspendBackups / resumeProtection / resumeBackups: checked, then an async operation."""
        verb, allowed, _ = INSTANCE_ACTIONS[action.lower()]
        v = self.vault(sub, rg, vault)
        record = self.instance(sub, rg, vault, name)
        with self.state.lock:
            current = record["properties"]["currentProtectionState"]
            if current not in allowed:
                raise BadRequest(
                    f"Operation '{verb}' is not allowed while the backup instance is in state '{current}'.",
                    code="UserErrorInvalidOperationForCurrentProtectionState",
                )
            record["previous_state"] = current
            self._set_protection(record, "UpdatingProtection")
            return self._vault_op(
                "dp.instance_action", "instance_action", v, sub, rg, vault, ectx, fault,
                instance_key=ids.key(record["id"]), action=action.lower(), instance=name,
            )  # fmt: skip

    def _action_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        verb, _, target = INSTANCE_ACTIONS[op["action"]]
        error = self._fault_error(op)
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        with self.state.lock:
            self._set_protection(record, str(record.pop("previous_state", target)) if error else target)
            self.state.touch()
        self.ops.finish(op, "Failed" if error else "Succeeded", error)
        if not error:
            self.events.emit(
                "ResourceActionSuccess", record["id"], f"{INSTANCE_TYPE}/{verb}/action", op.get("ectx") or {}
            )

    @staticmethod
    def _set_protection(record: Record, state: str) -> None:
        record["properties"]["currentProtectionState"] = state
        record["properties"]["protectionStatus"] = {"status": STATUS_OF.get(state, state)}

    def list_instances(self, vault_key: str, start: int, size: int) -> tuple[list[Record], int]:
        keys = self.state.members("instances_by_vault", vault_key)
        out = [r for k in itertools.islice(keys, start, start + size) if (r := self.state.get("instances", k))]
        return out, self.state.count("instances_by_vault", vault_key)

    def instances_for_datasource(self, resource_id: str) -> list[Record]:
        return [
            r
            for k in self.state.members("instances_by_ds", ids.key(resource_id))
            if (r := self.state.get("instances", k)) is not None
        ]

    @staticmethod
    def render_instance(record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {
            "properties": record["properties"],
            "id": record["id"],
            "name": record["name"],
            "type": INSTANCE_TYPE,
        }
        if record.get("tags"):
            out["tags"] = record["tags"]
        return out

    # -- jobs, recovery points, restore ---------------------------------------------------------------
    def _instance_op(
        self, kind: str, sub: str, rg: str, vault: str, name: str, ectx: dict[str, Any],
        fault: dict[str, Any] | None, allowed: frozenset[str], verb: str, **keys: Any,
    ) -> Record:  # fmt: skip
        """An async operation on one instance, refused (400) unless the instance is in one of `allowed`."""
        v = self.vault(sub, rg, vault)
        record = self.instance(sub, rg, vault, name)
        current = record["properties"]["currentProtectionState"]
        if current not in allowed:
            raise BadRequest(
                f"Operation '{verb}' is not allowed while the backup instance is in state '{current}'.",
                code="UserErrorInvalidOperationForCurrentProtectionState",
            )
        return self._vault_op(
            kind, "instance_action", v, sub, rg, vault, ectx, fault,
            instance_key=ids.key(record["id"]), instance=name, **keys,
        )  # fmt: skip

    def adhoc_backup(
        self, sub: str, rg: str, vault: str, name: str, body: Any, ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        """POST backup: the rule must be a backup rule of the instance's policy (the service's TriggerBackupRequest)."""
        options = body.get("backupRuleOptions") if isinstance(body, dict) else None
        if (
            not isinstance(options, dict)
            or not options.get("ruleName")
            or not isinstance(options.get("triggerOption"), dict)
        ):
            raise InvalidRequestContent(
                "The request content was invalid and could not be deserialized: "
                "'Required property 'backupRuleOptions' (ruleName, triggerOption) not found in JSON.'"
            )
        record = self.instance(sub, rg, vault, name)
        policy = self.state.get("policies", ids.key(str(record["properties"]["policyInfo"].get("policyId", ""))))
        rules = backup_rule_names(policy)
        if str(options["ruleName"]) not in rules:
            raise BadRequest(
                f"Backup rule '{options['ruleName']}' is not in the policy of the backup instance ({rules}).",
                code="UserErrorInvalidBackupRuleName",
            )
        tag = str(options["triggerOption"].get("retentionTagOverride") or "Default")
        return self._instance_op(
            "dp.adhoc_backup", sub, rg, vault, name, ectx, fault, RUNS_WHILE, "backup",
            rule=str(options["ruleName"]), tag=tag,
        )  # fmt: skip

    def _adhoc_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        error = self._fault_error(op)
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        if error is None:
            with self.state.lock:
                job = self.jobs.start_backup(record, rule=op["rule"], tag=op["tag"], user_triggered=True)
            op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": job["name"]}
        self.ops.finish(op, "Failed" if error else "Succeeded", error)

    def sync(
        self, sub: str, rg: str, vault: str, name: str, body: Any, ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        """POST sync: re-reads the datasource and re-checks the roles; a ProtectionError whose cause is fixed
        clears (approximation: Azure documents sync as "resync the backup instance", not its exact effect)."""
        sync_type = (body or {}).get("syncType", "Default") if isinstance(body, dict) else "Default"
        if sync_type not in ("Default", "ForceResync"):
            raise BadRequest(f"syncType '{sync_type}' is not valid.", code="UserErrorInvalidRequestParameter")
        allowed = frozenset({*RUNS_WHILE, "ConfiguringProtectionFailed"})
        return self._instance_op("dp.sync", sub, rg, vault, name, ectx, fault, allowed, "sync")

    def _sync_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        v = self.state.get("vaults", op["vault_key"])
        if record is None or v is None:
            self.ops.finish(op, "Canceled")
            return
        props = record["properties"]
        server_key = ids.key(str(props["dataSourceInfo"].get("resourceID", "")))
        error = self._fault_error(op) or self._async_rules(v, server_key, props.get("identityDetails"))
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        with self.state.lock:
            if error is None and props["currentProtectionState"] == "ProtectionError":
                self._set_protection(record, "ProtectionConfigured")
                props.pop("protectionErrorDetails", None)
            self.state.touch()
        self.ops.finish(op, "Failed" if error else "Succeeded", error)

    def validate_restore(
        self, sub: str, rg: str, vault: str, name: str, body: Any, ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        request = body.get("restoreRequestObject") if isinstance(body, dict) else None
        v = self.vault(sub, rg, vault)
        self.jobs.check_restore(v, self.instance(sub, rg, vault, name), request)
        return self._instance_op(
            "dp.validate_restore", sub, rg, vault, name, ectx, fault, RESTORABLE, "validateRestore", request=request
        )

    def _validate_restore_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        v = self.state.get("vaults", op["vault_key"])
        error = self._fault_error(op) or self._restore_op_error(v, record, op["request"])
        op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": str(uuid.uuid4())}
        self.ops.finish(op, "Failed" if error else "Succeeded", error)

    def _restore_op_error(self, v: Record | None, record: Record, request: dict[str, Any]) -> dict[str, Any] | None:
        error = self.jobs.restore_error(v, record, request)
        if error is None:
            return None
        info = user_facing_info(error["code"], error["message"], error["recommendedAction"][0], retryable=False)
        return {"code": error["code"], "message": error["message"], "additionalInfo": [info]}

    def restore(
        self, sub: str, rg: str, vault: str, name: str, body: Any, ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        """POST restore: the same synchronous rules as validateRestore; the operation starts a restore job (its
        role check happens in the job, so a missing role is a Failed job, as the restore troubleshooting shows)."""
        v = self.vault(sub, rg, vault)
        self.jobs.check_restore(v, self.instance(sub, rg, vault, name), body)
        return self._instance_op("dp.restore", sub, rg, vault, name, ectx, fault, RESTORABLE, "restore", request=body)

    def _restore_done(self, op: Record) -> None:
        record = self.state.get("instances", op["instance_key"])
        error = self._fault_error(op)
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        if error is None:
            try:
                rp = self.jobs.recovery_point(record, str(op["request"].get("recoveryPointId", "")))
            except ArmError as exc:  # the recovery point expired while the operation ran
                error = op_error(exc.code, exc.message, "Pick another recovery point.", retryable=False)
            else:
                with self.state.lock:
                    job = self.jobs.start_restore(record, op["request"], rp)
                op["result"] = {"objectType": "OperationJobExtendedInfo", "jobId": job["name"]}
        self.ops.finish(op, "Failed" if error else "Succeeded", error)
