"""Backup vault managed identities: system-assigned, user-assigned, or both, and which one an instance uses.

Why a module of its own: validation, configuration, backup jobs and restores all ask the same question (whose
roles count for this instance?), and the answer depends on the vault's identity and the instance's (or restore
request's) `identityDetails`. Azure's rule, as the Data Protection docs and PLATFORM-NOTES state it: without
`identityDetails`, or with `useSystemAssignedIdentity: true`, the vault's system-assigned identity is used; with
`useSystemAssignedIdentity: false`, the user-assigned identity named by `userAssignedIdentityArmUrl`, which must
be attached to the vault.

Approximation (docs/EMULATOR.md): user-assigned identities exist implicitly. Their principal and client ids are
derived from the identity's ARM id (the same identity attached to two vaults has the same principal, as in Azure);
Microsoft.ManagedIdentity itself is not emulated.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from emulator.core.errors import BadRequest

UAMI_RE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    re.IGNORECASE,
)
_NAMESPACE = uuid.UUID("6f1c7f0e-5d0b-4c53-9a43-2d1f3a0c9e11")


def parse(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The identity fields of a vault record from a vault PUT body (keeping an existing system principal)."""
    identity = body.get("identity") or {}
    if not isinstance(identity, dict):
        raise BadRequest("'identity' must be an object.", code="InvalidIdentity")
    kind = str(identity.get("type", "None"))
    words = {w.strip().lower() for w in kind.split(",")}
    unknown = words - {"none", "systemassigned", "userassigned"}
    if unknown:
        raise BadRequest(f"Identity type '{kind}' is not supported.", code="InvalidIdentityType")
    system = "systemassigned" in words
    principal = ((existing or {}).get("principal_id") or str(uuid.uuid4())) if system else None
    user: dict[str, dict[str, str]] = {}
    if "userassigned" in words:
        given = identity.get("userAssignedIdentities")
        if not isinstance(given, dict) or not given:
            raise BadRequest(
                "Identity type 'UserAssigned' needs at least one entry in 'userAssignedIdentities'.",
                code="InvalidIdentity",
            )
        for arm_id in given:
            if not UAMI_RE.match(str(arm_id)):
                raise BadRequest(
                    f"'{arm_id}' is not the resource id of a user-assigned managed identity.",
                    code="InvalidUserAssignedIdentityId",
                )
            user[str(arm_id).lower()] = {
                "id": str(arm_id),
                "principal_id": str(uuid.uuid5(_NAMESPACE, "principal:" + str(arm_id).lower())),
                "client_id": str(uuid.uuid5(_NAMESPACE, "client:" + str(arm_id).lower())),
            }
    return {"identity_type": kind, "principal_id": principal, "user_identities": user}


def render(vault: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """The vault's `identity` as the spec's DppIdentityDetails."""
    out: dict[str, Any] = {"type": vault["identity_type"]}
    if vault.get("principal_id"):
        out.update({"principalId": vault["principal_id"], "tenantId": tenant_id})
    users = vault.get("user_identities") or {}
    if users:
        out["userAssignedIdentities"] = {
            u["id"]: {"principalId": u["principal_id"], "clientId": u["client_id"]} for u in users.values()
        }
    return out


def check_details(vault: dict[str, Any], details: Any) -> None:
    """Synchronous rule: `identityDetails` must name an identity the vault has (400 otherwise)."""
    if details is None:
        return
    if not isinstance(details, dict):
        raise BadRequest("'identityDetails' must be an object.", code="UserErrorInvalidRequestParameter")
    if details.get("useSystemAssignedIdentity", True) is not False:
        return
    url = str(details.get("userAssignedIdentityArmUrl") or "")
    if not url:
        raise BadRequest(
            "'userAssignedIdentityArmUrl' is required when 'useSystemAssignedIdentity' is false.",
            code="UserErrorInvalidRequestParameter",
        )
    if url.lower() not in (vault.get("user_identities") or {}):
        raise BadRequest(
            f"The user-assigned identity '{url}' is not attached to the Backup vault '{vault['name']}'.",
            code="UserErrorUserAssignedIdentityNotAttachedToVault",
        )


def principal_for(vault: dict[str, Any] | None, details: Any) -> str | None:
    """The principal whose role assignments count for an instance or restore; None when the vault has none."""
    if vault is None:
        return None
    if isinstance(details, dict) and details.get("useSystemAssignedIdentity", True) is False:
        user = (vault.get("user_identities") or {}).get(str(details.get("userAssignedIdentityArmUrl") or "").lower())
        return user["principal_id"] if user else None
    principal = vault.get("principal_id")
    return str(principal) if principal else None
