"""Resource groups. Subscriptions exist implicitly: any well-formed GUID is a subscription."""

from __future__ import annotations

from typing import Any

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.errors import BadRequest, ResourceGroupNotFound
from emulator.core.store import Record, State

RG_TYPE = "Microsoft.Resources/resourceGroups"


class ResourceGroups:
    def __init__(self, state: State, clock: Clock) -> None:
        self.state = state
        self.clock = clock

    def create_or_update(self, sub: str, name: str, body: dict[str, Any]) -> tuple[Record, bool]:
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("The 'location' property is required for resource group.", code="LocationRequired")
        rid = ids.rg_id(sub, name)
        k = ids.key(rid)
        with self.state.lock:
            existing = self.state.get("resource_groups", k)
            record: Record = {
                "id": existing["id"] if existing else rid,
                "name": existing["name"] if existing else name,
                "subscription": sub,
                "location": existing["location"] if existing else location,
                "tags": body.get("tags") or {},
                "created": existing["created"] if existing else self.clock.now(),
            }
            self.state.put("resource_groups", k, record, [("rg_by_sub", sub.lower())])
        return record, existing is None

    def get(self, sub: str, name: str) -> Record:
        record = self.state.get("resource_groups", ids.key(ids.rg_id(sub, name)))
        if record is None:
            raise ResourceGroupNotFound(f"Resource group '{name}' could not be found.")
        return record

    def require(self, sub: str, name: str) -> Record:
        """Used by every provider before creating a resource: ARM fails with ResourceGroupNotFound."""
        return self.get(sub, name)

    def delete(self, sub: str, name: str) -> Record:
        """Delete the group and everything under it (ARM deletes contained resources too)."""
        record = self.get(sub, name)
        prefix = ids.key(record["id"]) + "/"
        with self.state.lock:
            for coll in (
                "servers", "server_children", "vaults", "policies", "instances", "deleted_instances", "jobs",
                "recovery_points", "role_assignments",
            ):  # fmt: skip
                for k in [k for k in self.state.collections[coll] if k.startswith(prefix)]:
                    self.state.delete(coll, k)
            self.state.delete("resource_groups", ids.key(record["id"]))
        return record

    def subscriptions(self) -> list[str]:
        """Subscriptions that hold at least one resource group (lower-cased IDs)."""
        return self.state.groups("rg_by_sub")

    def list(self, sub: str) -> list[Record]:
        out = []
        for k in self.state.members("rg_by_sub", sub.lower()):
            r = self.state.get("resource_groups", k)
            if r is not None:
                out.append(r)
        return out

    @staticmethod
    def render(record: Record) -> dict[str, Any]:
        return {
            "id": record["id"],
            "name": record["name"],
            "type": RG_TYPE,
            "location": record["location"],
            "tags": record["tags"],
            "properties": {"provisioningState": "Succeeded"},
        }
