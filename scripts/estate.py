"""Building an estate in the local emulator the way a platform team would in Azure: through ARM.

Used by the integration tests, `make demo` and the benchmarks. Everything goes through autoprotect's own
ArmClient with a token the emulator issues to a separate "operator" principal, so the estate's writes are
throttled, logged and turned into Event Grid events exactly like a person's would be.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.credentials import AccessToken

from shared.arm.client import ArmClient, ArmResponse
from shared.arm.lro import polling_target
from shared.ids import SERVER_RESOURCE_TYPE

DP_API = "2026-06-01"
PG_API = "2025-08-01"
AUTHZ_API = "2022-04-01"
RG_API = "2021-04-01"
LTR_BACKUP_ROLE = "c088a766-074b-43ba-90d4-1fb21feae531"
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OPERATOR_PRINCIPAL = "0a0a0a0a-0000-4000-8000-0000000a11ce"


class AdminTokenCredential:
    """Tokens for a chosen principal from the emulator's admin API (the emulator's stand-in for `az login`)."""

    def __init__(self, banner: dict[str, Any], principal_id: str) -> None:
        self._banner = banner
        self._principal_id = principal_id

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        response = requests.post(
            f"{self._banner['admin']}/token",
            json={"principal_id": self._principal_id},
            headers={"X-Emulator-Admin": self._banner["identity_header"]},
            verify=self._banner["ca_bundle"],
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        return AccessToken(body["access_token"], int(body["expires_on"]))


class EstateError(RuntimeError):
    pass


@dataclass
class Estate:
    """An operator's view of the emulator: create resource groups, vaults, policies, servers and roles."""

    arm: ArmClient
    subscription_id: str

    @classmethod
    def connect(cls, banner: dict[str, Any], subscription_id: str | None = None) -> Estate:
        credential = AdminTokenCredential(banner, OPERATOR_PRINCIPAL)
        arm = ArmClient(banner["arm"], credential, verify=banner["ca_bundle"])
        subscription = subscription_id or (banner.get("subscription_ids") or [str(uuid.uuid4())])[0]
        return cls(arm, subscription)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _put(self, path: str, api: str, body: Any, ok: tuple[int, ...] = (200, 201, 202)) -> ArmResponse:
        response = self.arm.put(self.arm.url_for(path, api), body)
        if response.status not in ok:
            raise EstateError(f"PUT {path}: HTTP {response.status} {response.body}")
        return response

    def wait(self, response: ArmResponse, timeout: float = 120) -> None:
        """Follow an async operation to its end (an operator's script may block; functions never do)."""
        target = polling_target(response.headers)
        if target is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.arm.get(target.url)
            state = status.body.get("status", "") if isinstance(status.body, dict) else ""
            if status.status == 200 and state.lower() in ("succeeded", "failed", "canceled"):
                if state.lower() != "succeeded":
                    raise EstateError(f"operation {target.url} ended {state}: {status.body}")
                return
            if status.status in (200, 201, 204) and target.mode.value == "location":
                return
            time.sleep(min(max(target.retry_after_s, 0.05), 2.0))
        raise EstateError(f"operation {target.url} did not finish within {timeout}s")

    def rg_id(self, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{name}"

    # -- resources --------------------------------------------------------------------------------------------

    def resource_group(self, name: str, location: str = "westeurope") -> str:
        self._put(self.rg_id(name), RG_API, {"location": location})
        return self.rg_id(name)

    def vault(self, resource_group: str, name: str, location: str = "westeurope") -> dict[str, Any]:
        path = f"{self.rg_id(resource_group)}/providers/Microsoft.DataProtection/backupVaults/{name}"
        body = {
            "location": location,
            "identity": {"type": "SystemAssigned"},
            "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
        }
        response = self._put(path, DP_API, body)
        self.wait(response)
        got = self.arm.get(self.arm.url_for(path, DP_API))
        if got.status != 200:
            raise EstateError(f"vault {path} not readable: {got.status}")
        result: dict[str, Any] = got.body
        return result

    def policy(self, vault_id: str, name: str = "pg-weekly") -> str:
        path = f"{vault_id}/backupPolicies/{name}"
        self._put(path, DP_API, {"properties": postgres_weekly_policy()})
        return path

    def server(
        self,
        resource_group: str,
        name: str,
        *,
        location: str = "westeurope",
        tags: dict[str, str] | None = None,
        replica_of: str | None = None,
        wait: bool = False,
    ) -> str:
        server_id = f"{self.rg_id(resource_group)}/providers/{SERVER_RESOURCE_TYPE}/{name}"
        properties: dict[str, Any] = {
            "administratorLogin": "pgadmin",
            "administratorLoginPassword": secrets.token_urlsafe(24),
            "version": "16",
            "storage": {"storageSizeGB": 128},
            "createMode": "Create",
        }
        if replica_of:
            properties = {"createMode": "Replica", "sourceServerResourceId": replica_of}
        body = {
            "location": location,
            "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
            "properties": properties,
            "tags": tags or {},
        }
        response = self._put(server_id, PG_API, body)
        if wait:
            self.wait(response)
        return server_id

    def tag(self, resource_id: str, tags: dict[str, str], api: str = PG_API) -> None:
        response = self.arm.request("PATCH", self.arm.url_for(resource_id, api), body={"tags": tags})
        if response.status not in (200, 202):
            raise EstateError(f"PATCH {resource_id}: HTTP {response.status} {response.body}")
        self.wait(response)

    def server_action(self, server_id: str, action: str) -> None:
        """POST stop / start / restart on a server, as a person in the portal would, and wait for it."""
        response = self.arm.request("POST", self.arm.url_for(f"{server_id}/{action}", PG_API))
        if response.status not in (200, 202):
            raise EstateError(f"POST {server_id}/{action}: HTTP {response.status} {response.body}")
        self.wait(response)

    def delete(self, resource_id: str, api: str) -> None:
        response = self.arm.delete(self.arm.url_for(resource_id, api))
        if response.status not in (200, 202, 204):
            raise EstateError(f"DELETE {resource_id}: HTTP {response.status} {response.body}")
        self.wait(response)

    def grant(self, scope: str, principal_id: str, role: str) -> str:
        """A role assignment with a fresh name (as the portal would), by role definition GUID."""
        path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
        body = {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{role}",
                "principalId": principal_id,
                "principalType": "ServicePrincipal",
            }
        }
        self._put(path, AUTHZ_API, body, ok=(200, 201))
        return path

    def grant_vault_roles(self, resource_group: str, principal_id: str) -> None:
        """Both roles the vault needs, at resource-group scope so they cover every server in the group."""
        scope = self.rg_id(resource_group)
        self.grant(scope, principal_id, LTR_BACKUP_ROLE)
        self.grant(scope, principal_id, READER_ROLE)

    def instances(self, vault_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: str | None = self.arm.url_for(f"{vault_id}/backupInstances", DP_API)
        while url:
            response = self.arm.get(url)
            if response.status != 200:
                raise EstateError(f"listing instances: HTTP {response.status}")
            items += response.body.get("value", [])
            url = response.body.get("nextLink")
        return items

    def protect_directly(self, vault_id: str, policy_id: str, server_id: str, location: str) -> None:
        """Protect a server by hand, as another team would have (for 'already protected elsewhere')."""
        from shared.backup import backup_instance
        from shared.config import VaultTarget
        from shared.ids import ServerId, VaultChildId
        from shared.rules import ServerFacts

        server = ServerId.parse(server_id)
        target = VaultTarget(VaultChildId.parse_vault(vault_id), VaultChildId.parse_policy(policy_id))
        body = backup_instance(ServerFacts(server, location, "Ready", "Primary"), target)
        path = f"{vault_id}/backupInstances/manual-{server.name}"
        self.wait(self._put(path, DP_API, {"properties": body}))


def postgres_weekly_policy() -> dict[str, Any]:
    """A weekly vault-store policy for flexible servers (the only schedule the datasource supports)."""
    vault_store = {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"}
    return {
        "objectType": "BackupPolicy",
        "datasourceTypes": [SERVER_RESOURCE_TYPE],
        "policyRules": [
            {
                "name": "BackupWeekly",
                "objectType": "AzureBackupRule",
                "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Full"},
                "dataStore": vault_store,
                "trigger": {
                    "objectType": "ScheduleBasedTriggerContext",
                    "schedule": {"repeatingTimeIntervals": ["R/2026-01-04T02:00:00+00:00/P1W"]},
                    "taggingCriteria": [{"isDefault": True, "tagInfo": {"tagName": "Default"}, "taggingPriority": 99}],
                },
            },
            {
                "name": "Default",
                "objectType": "AzureRetentionRule",
                "isDefault": True,
                "lifecycles": [
                    {
                        "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P12W"},
                        "sourceDataStore": vault_store,
                    }
                ],
            },
        ],
    }
