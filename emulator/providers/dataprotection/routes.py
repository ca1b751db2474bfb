"""Routes for Microsoft.DataProtection (vaults, policies, instances, jobs, operation status/results)."""

from __future__ import annotations

from emulator.apiversions import DATAPROTECTION
from emulator.hub import Hub
from emulator.providers.dataprotection.handlers import DataProtectionHandlers
from emulator.providers.dataprotection.models import INSTANCE_TYPE, POLICY_TYPE, VAULT_TYPE, DataProtection
from emulator.routing import Route

SUB = "/subscriptions/{sub}"
RG = SUB + "/resourceGroups/{rg}/providers/Microsoft.DataProtection"
VAULT = RG + "/backupVaults/{vault}"


def register(hub: Hub) -> DataProtection:
    m = hub.models
    model = DataProtection(
        hub.state,
        hub.clock,
        hub.operations,
        hub.events,
        m["resource_groups"],
        m["servers"],
        m["role_assignments"],
        hub.config,
        hub.identity.tenant_id,
    )
    h = DataProtectionHandlers(hub, model)
    r = hub.router
    v = DATAPROTECTION
    p = "dataprotection"
    loc = SUB + "/providers/Microsoft.DataProtection/locations/{location}"
    r.add(Route("GET", loc + "/operationStatus/{op}", h.op_status, v, p, kind="poll"))
    r.add(Route("GET", loc + "/operationResults/{op}", h.op_result, v, p, kind="poll"))
    r.add(Route("GET", RG + "/operationStatus/{op}", h.op_status, v, p, kind="poll"))
    r.add(Route("GET", VAULT + "/operationStatus/{op}", h.op_status, v, p, kind="poll"))
    r.add(Route("GET", VAULT + "/operationResults/{op}", h.op_result, v, p, kind="poll"))
    r.add(Route("GET", VAULT + "/backupInstances/{bi}/operationResults/{op}", h.op_result, v, p, kind="poll"))
    # Resource-group-scoped results, as the Location headers of the newer examples (stopProtection, ...) give them.
    r.add(Route("GET", RG + "/backupInstances/{bi}/operationResults/{op}", h.op_result, v, p, kind="poll"))
    r.add(Route("GET", RG + "/operationResults/{op}", h.op_result, v, p, kind="poll"))
    bi = VAULT + "/backupInstances/{name}"
    r.add(Route("POST", bi + "/backup", h.adhoc_backup, v, p, name=f"{INSTANCE_TYPE}/backup/action"))
    r.add(Route("POST", bi + "/sync", h.sync, v, p, name=f"{INSTANCE_TYPE}/sync/action"))
    r.add(
        Route("POST", bi + "/validateRestore", h.validate_restore, v, p, name=f"{INSTANCE_TYPE}/validateRestore/action")
    )
    r.add(Route("POST", bi + "/restore", h.restore, v, p, name=f"{INSTANCE_TYPE}/restore/action"))
    r.add(Route("GET", bi + "/recoveryPoints", h.list_recovery_points, v, p))
    r.add(Route("GET", bi + "/recoveryPoints/{rp}", h.get_recovery_point, v, p))
    for verb in ("stopProtection", "suspendBackups", "resumeProtection", "resumeBackups"):
        action = f"{VAULT}/backupInstances/{{name}}/{{action:{verb}}}"
        r.add(Route("POST", action, h.instance_action, v, p, name=f"{INSTANCE_TYPE}/{verb}/action"))
    deleted = VAULT + "/deletedBackupInstances"
    r.add(Route("GET", deleted, h.list_deleted, v, p))
    r.add(Route("GET", deleted + "/{name}", h.get_deleted, v, p))
    r.add(
        Route(
            "POST",
            deleted + "/{name}/undelete",
            h.undelete,
            v,
            p,
            name=f"{VAULT_TYPE}/deletedBackupInstances/undelete/action",
        )
    )
    r.add(Route("POST", VAULT + "/validateForBackup", h.validate, v, p, name=f"{VAULT_TYPE}/validateForBackup/action"))
    r.add(Route("PUT", VAULT + "/backupInstances/{name}", h.put_instance, v, p, name=f"{INSTANCE_TYPE}/write"))
    r.add(Route("GET", VAULT + "/backupInstances/{name}", h.get_instance, v, p))
    r.add(Route("DELETE", VAULT + "/backupInstances/{name}", h.delete_instance, v, p, name=f"{INSTANCE_TYPE}/delete"))
    r.add(Route("GET", VAULT + "/backupInstances", h.list_instances, v, p))
    r.add(Route("PUT", VAULT + "/backupPolicies/{name}", h.put_policy, v, p, name=f"{POLICY_TYPE}/write"))
    r.add(Route("GET", VAULT + "/backupPolicies/{name}", h.get_policy, v, p))
    r.add(Route("DELETE", VAULT + "/backupPolicies/{name}", h.delete_policy, v, p, name=f"{POLICY_TYPE}/delete"))
    r.add(Route("GET", VAULT + "/backupPolicies", h.list_policies, v, p))
    r.add(Route("GET", VAULT + "/backupJobs/{job}", h.get_job, v, p))
    r.add(Route("GET", VAULT + "/backupJobs", h.list_jobs, v, p))
    r.add(Route("PUT", VAULT, h.put_vault, v, p, name=f"{VAULT_TYPE}/write"))
    r.add(Route("GET", VAULT, h.get_vault, v, p))
    r.add(Route("DELETE", VAULT, h.delete_vault, v, p, name=f"{VAULT_TYPE}/delete"))
    r.add(Route("GET", RG + "/backupVaults", h.list_vaults_rg, v, p))
    r.add(Route("GET", SUB + "/providers/Microsoft.DataProtection/backupVaults", h.list_vaults_sub, v, p))
    r.add(
        Route(
            "GET",
            "{scope:/subscriptions/.+}/providers/Microsoft.DataProtection/backupInstances",
            h.list_for_datasource,
            v,
            p,
        )
    )
    m["dataprotection"] = model
    return model
