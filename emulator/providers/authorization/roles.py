"""Built-in role definitions (a subset, by GUID) and ARM's action matching, for opt-in caller RBAC.

Only what autoprotect's deployments use is listed. Actions use ARM's wildcard syntax (`*`, `*/read`,
`Microsoft.DataProtection/*`), matched case-insensitively; `notActions` subtract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()


BUILT_IN: dict[str, RoleDefinition] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": RoleDefinition("Owner", ("*",)),
    "b24988ac-6180-42a0-ab88-20f7382dd24c": RoleDefinition(
        "Contributor",
        ("*",),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ),
    ),
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": RoleDefinition("Reader", ("*/read",)),
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": RoleDefinition(
        "User Access Administrator", ("*/read", "Microsoft.Authorization/*")
    ),
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": RoleDefinition(
        "Role Based Access Control Administrator",
        ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", "*/read"),
    ),
    "5e467623-bb1f-42f4-a55d-6e525e11384b": RoleDefinition(
        "Backup Contributor",
        (
            "Microsoft.DataProtection/*",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ),
    ),
    "a795c7a0-d4a2-40c1-ae25-d81f01202912": RoleDefinition(
        "Backup Reader",
        ("Microsoft.DataProtection/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ),
    "c088a766-074b-43ba-90d4-1fb21feae531": RoleDefinition(
        "PostgreSQL Flexible Server Long Term Retention Backup Role",
        (
            "Microsoft.DBforPostgreSQL/flexibleServers/ltrBackupOperations/read",
            "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action",
            "Microsoft.DBforPostgreSQL/flexibleServers/startLtrBackup/action",
            "Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read",
            "Microsoft.DBforPostgreSQL/locations/operationResults/read",
            "Microsoft.Resources/subscriptions/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ),
    ),
}


@lru_cache(maxsize=256)
def _pattern(action: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in action.split("*")) + "$", re.IGNORECASE)


def permits(role_guid: str, action: str) -> bool:
    """Does the built-in role allow `action` (e.g. `Microsoft.DataProtection/backupVaults/write`)?"""
    role = BUILT_IN.get(role_guid.lower())
    if role is None:
        return False
    if not any(_pattern(a).match(action) for a in role.actions):
        return False
    return not any(_pattern(a).match(action) for a in role.not_actions)
