"""Test helpers: a small ARM client over `requests`, request bodies, and polling with deadlines."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from scripts.stack import Child, start_emulator, wait_until

PG = "Microsoft.DBforPostgreSQL/flexibleServers"
DP_VERSION = "2026-06-01"
PG_VERSION = "2025-08-01"
RG_VERSION = "2021-04-01"
RA_VERSION = "2022-04-01"
LTR_ROLE = "c088a766-074b-43ba-90d4-1fb21feae531"
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


class Arm:
    """Raw HTTP against the emulator, so tests can assert exact statuses, headers and bodies."""

    def __init__(self, info: dict[str, Any], token: str | None = None) -> None:
        self.info = info
        self.base = info["arm"]
        self.session = requests.Session()
        self.session.verify = info["ca_bundle"]
        self.token = token or self.msi_token()

    def msi_token(self, **params: str) -> str:
        resp = requests.get(
            self.info["identity_endpoint"],
            params={"api-version": "2019-08-01", "resource": "https://management.azure.com", **params},
            headers={"X-IDENTITY-HEADER": self.info["identity_header"]},
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def call(
        self, method: str, path: str, body: Any = None, api_version: str | None = None, **kw: Any
    ) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        params = kw.pop("params", {})
        if api_version is not None:
            params["api-version"] = api_version
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.session.request(
            method,
            url,
            params=params,
            json=body,
            headers=headers,
            timeout=kw.pop("timeout", 30),
            verify=self.info["ca_bundle"],
            **kw,
        )

    def admin(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.request(
            method,
            f"{self.info['admin']}/{path}",
            json=body,
            headers={"X-Emulator-Admin": self.info["identity_header"]},
            timeout=kw.pop("timeout", 30),
            verify=self.info["ca_bundle"],
            **kw,
        )

    def advance(self, seconds: float) -> None:
        """Jump the emulator clock forward by `seconds` of service time (runs due transitions)."""
        self.admin("POST", "clock/advance", {"seconds": seconds}).raise_for_status()

    def poll_status(self, url: str, timeout: float = 20) -> dict[str, Any]:
        """Follow an Azure-AsyncOperation URL until a terminal status (case-insensitive)."""
        result: dict[str, Any] = {}

        def done() -> bool:
            nonlocal result
            result = self.call("GET", url).json()
            return str(result.get("status", "")).lower() in ("succeeded", "failed", "canceled")

        wait_until(done, timeout=timeout, what=f"operation {url}")
        return result


def new_sub() -> str:
    """Any GUID is a subscription: a fresh one isolates a test without resetting the shared emulator."""
    return str(uuid.uuid4())


def rg_path(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def server_path(sub: str, rg: str, name: str) -> str:
    return f"{rg_path(sub, rg)}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"


def vault_path(sub: str, rg: str, name: str) -> str:
    return f"{rg_path(sub, rg)}/providers/Microsoft.DataProtection/backupVaults/{name}"


def server_body(location: str = "westeurope", **props: Any) -> dict[str, Any]:
    return {
        "location": location,
        "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
        "properties": {
            "administratorLogin": "pgadmin",
            "administratorLoginPassword": "Secret-123",
            "version": "16",
            "storage": {"storageSizeGB": 128},
            "createMode": "Default",
            **props,
        },
    }


def vault_body(location: str = "westeurope") -> dict[str, Any]:
    return {
        "location": location,
        "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }


def policy_body(datasource_type: str = PG) -> dict[str, Any]:
    store = {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"}
    return {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": [datasource_type],
            "policyRules": [
                {
                    "name": "BackupWeekly",
                    "objectType": "AzureBackupRule",
                    "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Full"},
                    "dataStore": store,
                    "trigger": {
                        "objectType": "ScheduleBasedTriggerContext",
                        "schedule": {"repeatingTimeIntervals": ["R/2024-01-07T02:00:00+00:00/P1W"], "timeZone": "UTC"},
                        "taggingCriteria": [
                            {
                                "isDefault": True,
                                "tagInfo": {"tagName": "Default"},
                                "taggingPriority": 99,
                            }
                        ],
                    },
                },
                {
                    "name": "Default",
                    "objectType": "AzureRetentionRule",
                    "isDefault": True,
                    "lifecycles": [
                        {
                            "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P3M"},
                            "sourceDataStore": store,
                            "targetDataStoreCopySettings": [],
                        }
                    ],
                },
            ],
        }
    }


def instance(server_id: str, policy_id: str, location: str = "westeurope") -> dict[str, Any]:
    name = server_id.rsplit("/", 1)[-1]
    return {
        "objectType": "BackupInstance",
        "friendlyName": name,
        "dataSourceInfo": {
            "objectType": "Datasource",
            "resourceID": server_id,
            "resourceName": name,
            "resourceType": PG,
            "resourceLocation": location,
            "resourceUri": server_id,
            "datasourceType": PG,
        },
        "dataSourceSetInfo": {
            "objectType": "DatasourceSet",
            "resourceID": server_id,
            "resourceName": name,
            "resourceType": PG,
            "resourceLocation": location,
            "resourceUri": server_id,
            "datasourceType": PG,
        },
        "policyInfo": {"policyId": policy_id},
    }


def role_body(sub: str, role: str, principal: str) -> dict[str, Any]:
    return {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }
    }


class World:
    """A protectable setup in its own subscription: resource group, Ready server, vault, policy, roles."""

    def __init__(
        self,
        arm: Arm,
        *,
        location: str = "westeurope",
        vault_location: str | None = None,
        grant_server_role: bool = True,
        grant_rg_role: bool = True,
        propagate: bool = True,
        policy_type: str = PG,
    ) -> None:
        self.arm = arm
        self.sub = new_sub()
        self.rg = "rg-" + uuid.uuid4().hex[:8]
        assert arm.call("PUT", rg_path(self.sub, self.rg), {"location": location}, RG_VERSION).status_code == 201
        self.server_id = create_server(arm, self.sub, self.rg, "pg-" + uuid.uuid4().hex[:8], location)
        self.vault_id = vault_path(self.sub, self.rg, "vault1")
        resp = arm.call("PUT", self.vault_id, vault_body(vault_location or location), DP_VERSION)
        assert resp.status_code == 201, resp.text
        self.vault_principal = resp.json()["identity"]["principalId"]
        self.policy_id = f"{self.vault_id}/backupPolicies/weekly"
        assert arm.call("PUT", self.policy_id, policy_body(policy_type), DP_VERSION).status_code == 200
        if grant_server_role:
            self.grant(self.server_id, LTR_ROLE)
        if grant_rg_role:
            self.grant(rg_path(self.sub, self.rg), READER_ROLE)
        if propagate:
            arm.advance(600)

    def grant(self, scope: str, role: str) -> requests.Response:
        resp = self.arm.call(
            "PUT",
            f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
            role_body(self.sub, role, self.vault_principal),
            RA_VERSION,
        )
        assert resp.status_code == 201, resp.text
        return resp

    def instance(self, server_id: str | None = None) -> dict[str, Any]:
        return instance(server_id or self.server_id, self.policy_id)

    def validate(self, server_id: str | None = None) -> requests.Response:
        return self.arm.call(
            "POST",
            f"{self.vault_id}/validateForBackup",
            {"backupInstance": self.instance(server_id)},
            DP_VERSION,
        )

    def put_instance(
        self, name: str = "bi1", server_id: str | None = None, vault_id: str | None = None
    ) -> requests.Response:
        return self.arm.call(
            "PUT",
            f"{vault_id or self.vault_id}/backupInstances/{name}",
            {"properties": self.instance(server_id)},
            DP_VERSION,
        )


def create_server(
    arm: Arm, sub: str, rg: str, name: str, location: str = "westeurope", ready: bool = True, **props: Any
) -> str:
    path = server_path(sub, rg, name)
    resp = arm.call("PUT", path, server_body(location, **props), PG_VERSION)
    assert resp.status_code == 202, resp.text
    if ready:
        arm.advance(400)  # skip the ~5 min (service time) create instead of waiting for it
        arm.poll_status(resp.headers["Azure-AsyncOperation"])
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_special(tmp: Path, config: dict[str, Any], **kw: Any) -> Child:
    """Start a private emulator (for knobs that would disturb the shared one)."""
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps(config))
    return start_emulator(tmp / "logs", tmp / "data", profile=kw.pop("profile", "fast"), config=cfg, **kw)


def eventually(fn: Callable[[], bool], what: str, timeout: float = 15) -> None:
    wait_until(fn, timeout=timeout, what=what, interval=0.02)


def now() -> float:
    return time.time()


# -- with the official SDK clients (the `sdk` fixture) ---------------------------------------------------
POLL = {"polling_interval": 0.05}
# The body of stopProtection/suspendBackups. Not `{}`: the SDK sends an empty dict as text/plain (it tests the body
# for truth to pick the content type), and not nothing: oav then reports the spec's body parameter as null.
NO_GUARD: dict[str, list[str]] = {"resourceGuardOperationRequests": []}


def sdk_server(sdk: dict[str, Any], rg: str, name: str) -> Any:
    """A Ready server created with the official client (its resource group too)."""
    sdk["resources"].resource_groups.create_or_update(rg, {"location": "westeurope"})
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
        "properties": {"administratorLogin": "pgadmin", "administratorLoginPassword": "Secret-123", "version": "16"},
    }
    return sdk["postgres"].servers.begin_create_or_update(rg, name, body, **POLL).result()


def sdk_protected(sdk: dict[str, Any], arm: Arm, rg: str) -> tuple[str, str, str]:
    """A server protected in a new vault (roles granted and propagated): (vault name, instance name, server id)."""
    sub, dp, auth = sdk["sub"], sdk["dataprotection"], sdk["authorization"]
    server = sdk_server(sdk, rg, f"pg-{rg}")
    vault_body = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }
    vault = dp.backup_vaults.begin_create_or_update(rg, "vault", vault_body, **POLL).result()
    policy = dp.backup_policies.create_or_update(rg, "vault", "weekly", policy_body())
    for scope, role in ((server.id, LTR_ROLE), (f"/subscriptions/{sub}/resourceGroups/{rg}", READER_ROLE)):
        definition = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        assignment = {"role_definition_id": definition, "principal_id": vault.identity.principal_id}
        auth.role_assignments.create(scope, str(uuid.uuid4()), {**assignment, "principal_type": "ServicePrincipal"})
    arm.advance(600)  # role propagation
    bi = instance(server.id, policy.id)
    dp.backup_instances.begin_create_or_update(rg, "vault", "bi", {"properties": bi}, **POLL).result()
    eventually(lambda: sdk_state(dp, rg) == "ProtectionConfigured", "protection configured")
    return "vault", "bi", server.id


def sdk_state(dp: Any, rg: str) -> str:
    state = dp.backup_instances.get(rg, "vault", "bi").properties.current_protection_state
    return str(getattr(state, "value", state))
