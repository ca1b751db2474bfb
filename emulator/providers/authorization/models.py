"""Microsoft.Authorization/roleAssignments with inheritance and a propagation delay.

An assignment is visible in GET/list at once (as in Azure) but only *counts* for the emulated services'
permission checks after `role_propagation_s` (service seconds), which is what makes a first protection attempt
right after a role grant fail with UserErrorMissingRequiredPermissions, as in real life.
"""

from __future__ import annotations

import re
from typing import Any

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.errors import ArmError, BadRequest
from emulator.core.store import Record, State
from emulator.providers.authorization.roles import permits

RA_TYPE = "Microsoft.Authorization/roleAssignments"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PG_LTR_BACKUP = "c088a766-074b-43ba-90d4-1fb21feae531"
ROLE_DEF_RE = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/([0-9a-fA-F-]{36})$", re.IGNORECASE
)
FILTER_PRINCIPAL = re.compile(r"principalId\s+eq\s+'([^']+)'", re.IGNORECASE)
FILTER_ASSIGNED_TO = re.compile(r"assignedTo\('([^']+)'\)", re.IGNORECASE)
FILTER_AT_SCOPE = re.compile(r"atScope\(\)", re.IGNORECASE)


def ancestors(scope: str) -> list[str]:
    """Lower-cased keys of `scope` and every parent scope, root ("") first."""
    segs = [s for s in ids.key(scope).split("/") if s]
    out = [""]
    for i in range(1, len(segs) + 1):
        if segs[i - 1] == "providers" or (i >= 2 and segs[i - 2] == "providers"):
            continue  # "/.../providers" and "/.../providers/<ns>" are not scopes
        out.append("/" + "/".join(segs[:i]))
    return out


class RoleAssignments:
    def __init__(self, state: State, clock: Clock, config: dict[str, Any]) -> None:
        self.state = state
        self.clock = clock
        self.config = config

    def put(self, scope: str, name: str, body: dict[str, Any], caller: str) -> tuple[Record, bool]:
        if not ids.is_guid(name):
            raise BadRequest(
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
                code="InvalidRoleAssignmentId",
            )
        props = body.get("properties") or {}
        role_def = str(props.get("roleDefinitionId", ""))
        principal = str(props.get("principalId", ""))
        m = ROLE_DEF_RE.match(role_def)
        if m is None:
            raise BadRequest(f"The role definition ID '{role_def}' is not valid.", code="InvalidRoleDefinitionId")
        if not ids.is_guid(principal):
            raise BadRequest(f"The principal ID '{principal}' is not valid.", code="InvalidPrincipalId")
        role_guid = m.group(2).lower()
        scope = "/" + scope.strip("/") if scope.strip("/") else "/"
        rid = f"{scope.rstrip('/')}/providers/{RA_TYPE}/{name}"
        k = ids.key(rid)
        with self.state.lock:
            existing = self.state.get("role_assignments", k)
            if existing is not None:
                if existing["principalId"].lower() != principal.lower() or existing["role"] != role_guid:
                    raise ArmError(
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                        code="RoleAssignmentUpdateNotPermitted",
                        status=409,
                    )
                return existing, False
            for other_key in self.state.members("ra_by_principal", principal.lower()):
                other = self.state.get("role_assignments", other_key)
                if other and other["role"] == role_guid and ids.key(other["scope"]) == ids.key(scope):
                    raise ArmError(
                        "The role assignment already exists.",
                        code="RoleAssignmentExists",
                        status=409,
                        details=[{"code": "RoleAssignmentExists", "message": other["name"]}],
                    )
            now = self.clock.now()
            record: Record = {
                "id": rid,
                "name": name,
                "scope": scope,
                "roleDefinitionId": role_def,
                "role": role_guid,
                "principalId": principal,
                "principalType": props.get("principalType", "ServicePrincipal"),
                "description": props.get("description"),
                "created": now,
                "effective_at": self.clock.due(float(self.config["role_propagation_s"])),
                "createdBy": caller,
            }
            self.state.put(
                "role_assignments",
                k,
                record,
                [("ra_by_principal", principal.lower()), ("ra_by_scope", ids.key(scope))],
            )
        return record, True

    def get(self, scope: str, name: str) -> Record:
        rid = f"{scope.rstrip('/')}/providers/{RA_TYPE}/{name}"
        record = self.state.get("role_assignments", ids.key(rid))
        if record is None:
            raise ArmError(f"The role assignment '{name}' is not found.", code="RoleAssignmentNotFound", status=404)
        return record

    def delete(self, scope: str, name: str) -> Record | None:
        rid = f"{scope.rstrip('/')}/providers/{RA_TYPE}/{name}"
        return self.state.delete("role_assignments", ids.key(rid))

    def list(self, scope: str, flt: str) -> list[Record]:
        """ListForScope semantics: at, above and below the scope; `atScope()` keeps at/above only."""
        at_scope = bool(FILTER_AT_SCOPE.search(flt))
        pm = FILTER_PRINCIPAL.search(flt) or FILTER_ASSIGNED_TO.search(flt)
        principal = pm.group(1).lower() if pm else None
        scope_key = ids.key(scope) if scope.strip("/") else ""
        above = set(ancestors(scope))
        candidates: list[str]
        if principal is not None:
            candidates = list(self.state.members("ra_by_principal", principal))
        else:
            candidates = [k for a in sorted(above, key=len) for k in self.state.members("ra_by_scope", a)]
            if not at_scope:
                prefix = scope_key + "/"
                seen = set(candidates)
                candidates += [
                    k
                    for k, r in self.state.collections["role_assignments"].items()
                    if k not in seen and ids.key(r["scope"]).startswith(prefix)
                ]
        out = []
        for k in candidates:
            r = self.state.get("role_assignments", k)
            if r is None:
                continue
            s = ids.key(r["scope"]) if r["scope"].strip("/") else ""
            if s in above or (not at_scope and s.startswith(scope_key + "/")):
                out.append(r)
        return out

    def has_role(self, principal: str, roles: set[str], resource_id: str) -> bool:
        """Does `principal` effectively (propagated) hold one of `roles` on `resource_id` or a parent scope?"""
        now = self.clock.now()
        for k in self.state.members("ra_by_principal", principal.lower()):
            r = self.state.get("role_assignments", k)
            if r is None or r["role"] not in roles or r["effective_at"] > now:
                continue
            if ids.is_ancestor_or_self(r["scope"] if r["scope"].strip("/") else "", resource_id):
                return True
        return False

    def allows(self, principal: str, action: str, scope: str) -> bool:
        """Caller RBAC: does any propagated assignment of `principal` at or above `scope` permit `action`?"""
        now = self.clock.now()
        for k in self.state.members("ra_by_principal", principal.lower()):
            r = self.state.get("role_assignments", k)
            if r is None or r["effective_at"] > now:
                continue
            if ids.is_ancestor_or_self(r["scope"] if r["scope"].strip("/") else "", scope) and permits(
                r["role"], action
            ):
                return True
        return False

    def render(self, record: Record) -> dict[str, Any]:
        props: dict[str, Any] = {
            "roleDefinitionId": record["roleDefinitionId"],
            "principalId": record["principalId"],
            "principalType": record["principalType"],
            "scope": record["scope"],
            "createdOn": self.clock.iso(record["created"]),
            "updatedOn": self.clock.iso(record["created"]),
            "createdBy": record["createdBy"],
            "updatedBy": record["createdBy"],
        }
        if record.get("description"):
            props["description"] = record["description"]
        return {"properties": props, "id": record["id"], "type": RA_TYPE, "name": record["name"]}
