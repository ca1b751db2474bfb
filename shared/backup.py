"""The Azure calls of the protection flow, and the request bodies they need.

Bodies follow ../shared/PLATFORM-NOTES.md: validateForBackup wraps the instance as `{"backupInstance": ...}`,
the PUT wraps the same object as `{"properties": ...}`; `resourceID` has a capital ID; `objectType` values are
discriminators and required. Every URL is built from a validated ServerId or VaultChildId.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.arm.client import ArmClient, ArmResponse
from shared.arm.errors import ArmError
from shared.bodies import dig
from shared.config import Settings, VaultTarget
from shared.ids import SERVER_RESOURCE_TYPE, ServerId, VaultChildId
from shared.rules import ServerFacts

_VAULT_CACHE_TTL_S = 900.0
SUBSCRIPTIONS_API = "2022-12-01"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAX_PAGES = 50
RESUME_ACTIONS = frozenset({"resumeProtection", "resumeBackups"})


@dataclass(frozen=True)
class VaultIdentity:
    """The identity a vault backs up with: its system-assigned one when it has it, else its user-assigned one
    (the first by resource id when there are several). `user_assigned_id` is empty for the system identity."""

    principal_id: str
    user_assigned_id: str = ""

    @classmethod
    def of(cls, vault: Any) -> VaultIdentity:
        identity = vault.get("identity") if isinstance(vault, dict) else None
        identity = identity if isinstance(identity, dict) else {}
        system = identity.get("principalId")
        if isinstance(system, str) and system:
            return cls(system)
        users = identity.get("userAssignedIdentities")
        users = users if isinstance(users, dict) else {}
        for arm_id in sorted(users):
            principal = users[arm_id].get("principalId") if isinstance(users[arm_id], dict) else None
            if isinstance(principal, str) and principal:
                return cls(principal, str(arm_id))
        return cls("")

    def details(self) -> dict[str, Any] | None:
        """The backup instance's `identityDetails`: needed for a user-assigned identity, else Azure uses the
        system-assigned one (which such a vault does not have)."""
        if not self.user_assigned_id:
            return None
        return {"useSystemAssignedIdentity": False, "userAssignedIdentityArmUrl": self.user_assigned_id}


def backup_instance(facts: ServerFacts, target: VaultTarget, identity: VaultIdentity | None = None) -> dict[str, Any]:
    """The BackupInstance object for a flexible server (no credentials or policy parameters are needed)."""
    server = facts.server
    datasource = {
        "objectType": "Datasource",
        "datasourceType": SERVER_RESOURCE_TYPE,
        "resourceType": SERVER_RESOURCE_TYPE,
        "resourceID": server.id,
        "resourceUri": server.id,
        "resourceName": server.name,
        "resourceLocation": facts.location,
    }
    return {
        "objectType": "BackupInstance",
        "friendlyName": server.name,
        "dataSourceInfo": datasource,
        "dataSourceSetInfo": {**datasource, "objectType": "DatasourceSet"},
        "policyInfo": {"policyId": target.policy.id},
        **({"identityDetails": details} if identity and (details := identity.details()) else {}),
    }


class BackupApi:
    """Thread-safe; vault lookups are cached because every routing decision needs the vault's region."""

    def __init__(self, arm: ArmClient, settings: Settings) -> None:
        self._arm = arm
        self._dp = settings.dataprotection_api_version
        self._pg = settings.postgres_api_version
        self._subscriptions = settings.subscriptions_in_scope()
        self._vaults: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get_server(self, server: ServerId) -> ArmResponse:
        return self._arm.get(self._arm.url_for(server.id, self._pg))

    def instances_protecting(self, server: ServerId) -> list[dict[str, Any]]:
        """Backup instances for this server in any vault (the extension-routing list on the server)."""
        path = f"{server.id}/providers/Microsoft.DataProtection/backupInstances"
        return list(self.paged(self._arm.url_for(path, self._dp), missing_ok=True))

    def list_servers(self, subscription_id: str) -> Iterator[dict[str, Any]]:
        """Every flexible server of a subscription, page by page (ARM pages with nextLink)."""
        path = f"/subscriptions/{subscription_id}/providers/{SERVER_RESOURCE_TYPE}"
        return self.paged(self._arm.url_for(path, self._pg), max_pages=10_000)

    def subscriptions(self) -> list[str]:
        """The subscriptions to act on: the allow-list, or (AUTOPROTECT_ANY_SUBSCRIPTION) every enabled one the
        identity can read, from ARM's subscriptions list."""
        if self._subscriptions:
            return self._subscriptions
        found = []
        for item in self.paged(self._arm.url_for("/subscriptions", SUBSCRIPTIONS_API), max_pages=1_000):
            sub = item.get("subscriptionId")
            if isinstance(sub, str) and _GUID.fullmatch(sub) and str(item.get("state", "Enabled")) == "Enabled":
                found.append(sub.lower())
        return sorted(set(found))

    def list_instances(self, vault: VaultChildId) -> Iterator[dict[str, Any]]:
        return self.paged(self._arm.url_for(f"{vault.vault_id}/backupInstances", self._dp), max_pages=10_000)

    def paged(self, url: str, *, missing_ok: bool = False, max_pages: int = _MAX_PAGES) -> Iterator[dict[str, Any]]:
        """Items of an ARM list, following nextLink only while it stays on the ARM origin."""
        next_url: str | None = url
        for _ in range(max_pages):
            if next_url is None:
                return
            response = self._arm.get(next_url)
            if response.status == 404 and missing_ok:
                return
            if response.status != 200 or not isinstance(response.body, dict):
                raise self._arm.error_of(response)
            yield from (item for item in response.body.get("value") or [] if isinstance(item, dict))
            link = response.body.get("nextLink")
            next_url = self._arm.check_next_link(link, url) if isinstance(link, str) and link else None

    def first_backups(self, vaults: list[VaultChildId]) -> dict[str, datetime]:
        """When each datasource's first backup job completed (lower-cased server ID -> time), from the vaults."""
        first: dict[str, datetime] = {}
        for vault in vaults:
            for job in self.paged(self._arm.url_for(f"{vault.vault_id}/backupJobs", self._dp), max_pages=10_000):
                if str(dig(job, "properties", "status")).lower() != "completed":
                    continue
                if str(dig(job, "properties", "operationCategory")).lower() != "backup":
                    continue
                try:
                    ended = datetime.fromisoformat(str(dig(job, "properties", "endTime")).replace("Z", "+00:00"))
                except ValueError:
                    continue
                key = str(dig(job, "properties", "dataSourceId") or "").lower()
                if key and (key not in first or ended < first[key]):
                    first[key] = ended if ended.tzinfo else ended.replace(tzinfo=UTC)
        return first

    def delete_instance(self, vault: VaultChildId, instance_name: str) -> ArmResponse:
        return self._arm.delete(self.instance_url(vault, instance_name))

    def validate(self, facts: ServerFacts, target: VaultTarget) -> ArmResponse:
        url = self._arm.url_for(f"{target.vault.vault_id}/validateForBackup", self._dp)
        # Validation has no side effects, so repeating it after a lost connection is safe.
        body = {"backupInstance": backup_instance(facts, target, self.vault_identity(target.vault))}
        return self._arm.post(url, body, idempotent=True)

    def create_instance(self, facts: ServerFacts, target: VaultTarget, instance_name: str) -> ArmResponse:
        body = {"properties": backup_instance(facts, target, self.vault_identity(target.vault))}
        return self._arm.put(self.instance_url(target.vault, instance_name), body)

    def resume(self, vault: VaultChildId, instance_name: str, action: str) -> ArmResponse:
        """POST resumeProtection or resumeBackups: undo someone's stop or suspension (a PUT does not)."""
        if action not in RESUME_ACTIONS:
            raise ValueError(f"not a resume action: {action[:40]!r}")
        url = self._arm.url_for(f"{vault.vault_id}/backupInstances/{instance_name}/{action}", self._dp)
        self.instance_url(vault, instance_name)  # validates the name
        return self._arm.post(url, None)

    def get_instance(self, vault: VaultChildId, instance_name: str) -> ArmResponse:
        return self._arm.get(self.instance_url(vault, instance_name))

    def instance_url(self, vault: VaultChildId, instance_name: str) -> str:
        if not instance_name.replace("-", "").isalnum() or len(instance_name) > 100:
            raise ValueError(f"invalid backup instance name {instance_name[:120]!r}")
        return self._arm.url_for(f"{vault.vault_id}/backupInstances/{instance_name}", self._dp)

    @property
    def arm(self) -> ArmClient:
        return self._arm

    def error_of(self, response: ArmResponse) -> ArmError:
        return self._arm.error_of(response)

    def check_operation_url(self, url: str) -> str:
        return self._arm.check_operation_url(url)

    def poll(self, url: str) -> ArmResponse:
        """GET an operation's status; the URL must have an operation path shape (ForeignOriginError if not)."""
        return self._arm.get(self._arm.check_operation_url(url))

    def vault(self, vault: VaultChildId) -> dict[str, Any]:
        """The vault resource (location, identity), cached for a quarter of an hour per process."""
        now = time.monotonic()
        with self._lock:
            cached = self._vaults.get(vault.key)
            if cached and now - cached[0] < _VAULT_CACHE_TTL_S:
                return cached[1]
        response = self._arm.get(self._arm.url_for(vault.vault_id, self._dp))
        if response.status != 200 or not isinstance(response.body, dict):
            raise self._arm.error_of(response)
        with self._lock:
            self._vaults[vault.key] = (now, response.body)
        return response.body

    def vault_location(self, target: VaultTarget) -> str:
        return str(self.vault(target.vault).get("location") or "")

    def vault_identity(self, vault: VaultChildId) -> VaultIdentity:
        return VaultIdentity.of(self.vault(vault))

    def vault_principal(self, vault: VaultChildId) -> str:
        """The principal whose roles Azure checks for this vault's backups (system- or user-assigned)."""
        return self.vault_identity(vault).principal_id


def datasource_is(instance: object, server: ServerId) -> bool:
    """True when a backup instance from ARM protects exactly this server (checked before any PUT or DELETE)."""
    source = dig(instance, "properties", "dataSourceInfo", "resourceID")
    return isinstance(source, str) and source.lower().rstrip("/") == server.key


def already_protected_in(instances: list[dict[str, Any]]) -> list[str]:
    """Vault IDs that hold an instance for the server (from the extension-routing list)."""
    from shared.ids import vault_of

    vaults: list[str] = []
    for instance in instances:
        vault = vault_of(str(instance.get("id") or ""))
        if vault and vault not in vaults:
            vaults.append(vault)
    return vaults


__all__ = ["ArmError", "BackupApi", "already_protected_in", "backup_instance", "datasource_is"]
