"""The two roles a backup vault's identity needs on a server, checked (and, when allowed, granted) by GUID.

Azure Backup for PostgreSQL flexible servers needs the vault's managed identity to hold the "PostgreSQL Flexible
Server Long Term Retention Backup Role" on the server and Reader on the server's resource group. Role display
names have changed over time, so everything here goes by role definition GUID. An assignment at the scope or
any parent scope (resource group, subscription) counts. Assignments we create get names derived from
(scope, role, principal), so a retried or duplicated job re-PUTs the same assignment instead of adding one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.arm.client import ArmClient
from shared.ids import ServerId

LTR_BACKUP_ROLE = "c088a766-074b-43ba-90d4-1fb21feae531"  # PostgreSQL Flexible Server Long Term Retention Backup Role
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # Reader
ROLE_NAMES = {
    LTR_BACKUP_ROLE: "PostgreSQL Flexible Server Long Term Retention Backup Role",
    READER_ROLE: "Reader",
}
AUTHORIZATION_API = "2022-04-01"
_NAMESPACE = uuid.UUID("5b0c4d3e-8f0a-4f61-9a57-6b3f2c1d9e01")  # autoprotect's own; never change it


@dataclass(frozen=True)
class Grant:
    role_id: str
    scope: str
    principal_id: str

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role_id, self.role_id)

    @property
    def assignment_name(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.scope.lower()}|{self.role_id}|{self.principal_id.lower()}"))

    def describe(self) -> str:
        return f"{self.role_name} ({self.role_id}) on {self.scope} for principal {self.principal_id}"


def required(server: ServerId, principal_id: str) -> list[Grant]:
    return [
        Grant(LTR_BACKUP_ROLE, server.id, principal_id),
        Grant(READER_ROLE, server.resource_group_id, principal_id),
    ]


class Permissions:
    def __init__(self, arm: ArmClient) -> None:
        self._arm = arm

    def missing(self, server: ServerId, principal_id: str) -> list[Grant]:
        """The required grants the principal lacks, counting inherited assignments from parent scopes."""
        held = self._held(server, principal_id)
        return [grant for grant in required(server, principal_id) if not _covered(grant, held)]

    def _held(self, server: ServerId, principal_id: str) -> list[tuple[str, str]]:
        """(role GUID, scope) of every assignment of the principal that applies at the server."""
        path = f"{server.id}/providers/Microsoft.Authorization/roleAssignments"
        url = self._arm.url_for(path, AUTHORIZATION_API) + f"&$filter=principalId%20eq%20'{_guid(principal_id)}'"
        found: list[tuple[str, str]] = []
        next_url: str | None = url
        for _ in range(20):
            if next_url is None:
                break
            response = self._arm.get(next_url)
            if response.status != 200 or not isinstance(response.body, dict):
                raise self._arm.error_of(response)
            for item in response.body.get("value") or []:
                properties = item.get("properties") if isinstance(item, dict) else None
                if not isinstance(properties, dict):
                    continue
                role = str(properties.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
                found.append((role, str(properties.get("scope") or "").lower()))
            link = response.body.get("nextLink")
            next_url = self._arm.check_next_link(link, url) if isinstance(link, str) and link else None
        return found

    def grant(self, grant: Grant, subscription_id: str) -> None:
        """Create the assignment (idempotent by name; an equal assignment under another name also counts)."""
        path = f"{grant.scope}/providers/Microsoft.Authorization/roleAssignments/{grant.assignment_name}"
        body = {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{grant.role_id}",
                "principalId": grant.principal_id,
                "principalType": "ServicePrincipal",
            }
        }
        response = self._arm.put(self._arm.url_for(path, AUTHORIZATION_API), body)
        if response.status in (200, 201):
            return
        error = self._arm.error_of(response)
        if error.code == "RoleAssignmentExists":
            return
        raise error


def _covered(grant: Grant, held: list[tuple[str, str]]) -> bool:
    scope = grant.scope.lower()
    return any(role == grant.role_id and (scope == at or scope.startswith(at + "/")) for role, at in held)


def _guid(value: str) -> str:
    parsed = uuid.UUID(value)  # raises ValueError for anything that is not a GUID: never put it in a URL
    return str(parsed)
