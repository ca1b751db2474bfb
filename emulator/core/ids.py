"""ARM resource-ID helpers: IDs arrive in mixed casing, state is keyed by the lower-cased form."""

from __future__ import annotations

import re
import uuid

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def key(resource_id: str) -> str:
    """The state key of a resource ID: lower-cased, no trailing slash."""
    return resource_id.rstrip("/").lower()


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def new_guid() -> str:
    return str(uuid.uuid4())


def parts(resource_id: str) -> dict[str, str]:
    """Split an ID into `subscription`, `resource_group`, `namespace`, `type`, `name` (original casing)."""
    segs = [s for s in resource_id.split("/") if s]
    out: dict[str, str] = {}
    lower = [s.lower() for s in segs]
    if "subscriptions" in lower:
        i = lower.index("subscriptions")
        if i + 1 < len(segs):
            out["subscription"] = segs[i + 1]
    if "resourcegroups" in lower:
        i = lower.index("resourcegroups")
        if i + 1 < len(segs):
            out["resource_group"] = segs[i + 1]
    if "providers" in lower:
        i = len(lower) - 1 - lower[::-1].index("providers")
        rest = segs[i + 1 :]
        if rest:
            out["namespace"] = rest[0]
            types = rest[1::2]
            names = rest[2::2]
            if types:
                out["type"] = "/".join([rest[0], *types])
            if names:
                out["name"] = names[-1]
    return out


def is_ancestor_or_self(scope: str, resource_id: str) -> bool:
    """True when `scope` (any casing) is `resource_id` or one of its parent scopes, on path boundaries."""
    s = key(scope)
    r = key(resource_id)
    return s == "" or r == s or r.startswith(s + "/")


def rg_id(subscription: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
