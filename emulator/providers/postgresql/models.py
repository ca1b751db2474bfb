"""Microsoft.DBforPostgreSQL/flexibleServers: servers (async create/delete/stop/start/restart) and children.

A server is `Provisioning` until its create operation completes (`latency_s.server_create`), then `Ready`; the
ARM write event fires twice for a create (on accept while Provisioning, and on completion), as in Azure.
Stop, start and restart are POST actions: `Stopping` -> `Stopped`, `Starting` -> `Ready`, `Updating` -> `Ready`,
each an async operation whose success emits `ResourceActionSuccess` with the real operation name. A stopped
server starts by itself after seven days (`stopped_auto_start_s`), as Azure documents, with no ARM event (no
caller made a request). With `read_after_write_lag_s`, a created or re-created server answers 404 to GET and is
left out of listings until that long after its create completed (ARM's caches lag behind the write).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.errors import ArmError, BadRequest, ResourceNotFound
from emulator.core.operations import Operations
from emulator.core.store import Record, State
from emulator.eventgrid import EventBus
from emulator.providers.resources.models import ResourceGroups

NS = "Microsoft.DBforPostgreSQL"
SERVER_TYPE = f"{NS}/flexibleServers"
WRITE = f"{SERVER_TYPE}/write"
DELETE = f"{SERVER_TYPE}/delete"
ACTIONS = {
    "stop": (f"{SERVER_TYPE}/stop/action", "Ready", "Stopping", "Stopped", "server_stop"),
    "start": (f"{SERVER_TYPE}/start/action", "Stopped", "Starting", "Ready", "server_start"),
    "restart": (f"{SERVER_TYPE}/restart/action", "Ready", "Updating", "Ready", "server_restart"),
}
CHILD_TYPES = {"databases": "databases", "firewallrules": "firewallRules"}
CREATE_MODES = {"Default", "Create", "Update", "PointInTimeRestore", "GeoRestore", "Replica", "ReviveDropped"}
SERVER_STATES = {
    "Ready",
    "Dropping",
    "Disabled",
    "Starting",
    "Stopping",
    "Stopped",
    "Updating",
    "Provisioning",
    "Migrating",
    "ReadyForMigration",
    "Inaccessible",
}
# The spec's serverName parameter: pattern ^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*, 3 to 63 characters.
SERVER_NAME = re.compile(r"^(?=.{3,63}$)[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$")


def server_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NS}/flexibleServers/{name}"


class Servers:
    def __init__(
        self,
        state: State,
        clock: Clock,
        operations: Operations,
        events: EventBus,
        rgs: ResourceGroups,
        config: dict[str, Any],
    ) -> None:
        self.state = state
        self.clock = clock
        self.ops = operations
        self.events = events
        self.rgs = rgs
        self.config = config
        operations.on_complete("pg.create", self._create_done)
        operations.on_complete("pg.delete", self._delete_done)
        operations.on_complete("pg.update", self._update_done)
        for action in ACTIONS:
            operations.on_complete(f"pg.{action}", self._action_done)
        operations.on_action("pg.auto_start", self._auto_start)
        operations.on_action("pg.auto_start_done", self._auto_start_done)

    def _update_op(
        self, record: Record, ectx: dict[str, Any], fault: dict[str, Any] | None, resource_id: str | None = None
    ) -> Record:
        """An update (PUT on an existing server, PATCH, child PUT): 202 + operation, event on completion."""
        return self.ops.create(
            "pg.update",
            float(self.config["latency_s"]["server_update"]),
            provider="postgresql",
            subscription=record["subscription"],
            location=record["location"],
            resource_id=resource_id or record["id"],
            ectx=ectx,
            fault=fault,
        )

    def _update_done(self, op: Record) -> None:
        fault = op.get("fault")
        if fault:
            self.ops.finish(op, "Failed", {"code": fault["code"], "message": fault["message"]})
            return
        self.ops.finish(op, "Succeeded")
        rid = op["resource_id"]
        child = self.state.get("server_children", ids.key(rid))
        operation = f"{child['type']}/write" if child else WRITE
        self.events.emit("ResourceWriteSuccess", rid, operation, op.get("ectx") or {})

    # -- servers ---------------------------------------------------------------------------------------
    def find(self, resource_id: str) -> Record | None:
        return self.state.get("servers", ids.key(resource_id))

    def visible(self, record: Record) -> bool:
        """False while ARM's read side has not caught up with the create (`read_after_write_lag_s`)."""
        hidden_until = record.get("hidden_until")
        return not hidden_until or self.clock.now() >= hidden_until

    def get(self, sub: str, rg: str, name: str) -> Record:
        record = self.find(server_id(sub, rg, name))
        if record is None or not self.visible(record):
            self.rgs.require(sub, rg)
            raise ResourceNotFound(
                f"The Resource '{SERVER_TYPE}/{name}' under resource group '{rg}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
        return record

    def create(
        self, sub: str, rg: str, name: str, body: dict[str, Any], ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> tuple[Record, Record]:
        """Create or update; always asynchronous (the SDK accepts only 202), returns (server, operation)."""
        if not SERVER_NAME.match(name):
            raise BadRequest(
                f"Resource name '{name}' is invalid: a server name is 3 to 63 letters, digits and single hyphens, "
                "and does not start or end with a hyphen.",
                code="InvalidResourceName",
            )
        self.rgs.require(sub, rg)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("The 'location' property is required.", code="LocationRequired")
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise BadRequest("'properties' must be an object.", code="InvalidRequestContent")
        rid = server_id(sub, rg, name)
        k = ids.key(rid)
        with self.state.lock:
            existing = self.state.get("servers", k)
            if existing is not None:
                if existing["properties"]["state"] == "Dropping":
                    raise ArmError(f"Server '{name}' is being deleted.", code="ServerDropping", status=409)
                existing["tags"] = body.get("tags", existing["tags"]) or {}
                self.state.touch()
                return existing, self._update_op(existing, ectx, fault)
            mode = props.get("createMode", "Default")
            if mode not in CREATE_MODES:
                raise BadRequest(
                    f"The value '{mode}' of property 'createMode' is invalid.", code="InvalidParameterValue"
                )
            role, source = "Primary", None
            if mode == "Replica":
                source_id = props.get("sourceServerResourceId")
                source = self.find(str(source_id)) if source_id else None
                if source is None:
                    raise BadRequest(
                        f"The source server '{source_id}' of the replica was not found.", code="SourceServerNotFound"
                    )
                role = "AsyncReplica"
            now = self.clock.now()
            sku = body.get("sku") or {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
            record: Record = {
                "id": rid,
                "name": name,
                "subscription": sub,
                "resource_group": rg,
                "location": location,
                "tags": body.get("tags") or {},
                "sku": sku,
                "created": now,
                "created_by": ectx.get("principal_id", ""),
                "properties": {
                    "administratorLogin": props.get(
                        "administratorLogin", (source and source["properties"].get("administratorLogin")) or "pgadmin"
                    ),
                    "version": str(props.get("version", "16")),
                    "state": "Provisioning",
                    "fullyQualifiedDomainName": f"{name}.postgres.database.azure.com",
                    "storage": props.get("storage") or {"storageSizeGB": 128, "autoGrow": "Disabled", "tier": "P10"},
                    "backup": props.get("backup") or {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
                    "network": props.get("network") or {"publicNetworkAccess": "Enabled"},
                    "highAvailability": props.get("highAvailability") or {"mode": "Disabled"},
                    "availabilityZone": str(props.get("availabilityZone", "1")),
                    "replicationRole": role,
                    "replicaCapacity": 5 if role == "Primary" else 0,
                },
            }
            if source is not None:
                record["properties"]["sourceServerResourceId"] = source["id"]
            self.state.put(
                "servers", k, record, [("servers_by_sub", sub.lower()), ("servers_by_rg", ids.key(ids.rg_id(sub, rg)))]
            )
            op = self.ops.create(
                "pg.create",
                float(self.config["latency_s"]["server_create"]),
                provider="postgresql",
                subscription=sub,
                location=location,
                resource_id=rid,
                ectx=ectx,
                fault=fault,
            )
        self.events.emit("ResourceWriteSuccess", rid, WRITE, ectx)
        return record, op

    def _create_done(self, op: Record) -> None:
        record = self.find(op["resource_id"])
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        fault = op.get("fault")
        if fault:
            with self.state.lock:
                record["properties"]["state"] = "Disabled"
                self.state.touch()
            self.ops.finish(op, "Failed", {"code": fault["code"], "message": fault["message"]})
            return
        lag = float(self.config.get("read_after_write_lag_s", 0))
        with self.state.lock:
            if record["properties"]["state"] == "Provisioning":
                record["properties"]["state"] = "Ready"
            if lag > 0:
                record["hidden_until"] = self.clock.due(lag)
            self.state.touch()
        self.ops.finish(op, "Succeeded")
        self.events.emit("ResourceWriteSuccess", record["id"], WRITE, op.get("ectx") or {})

    def update(
        self, sub: str, rg: str, name: str, body: dict[str, Any], ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> tuple[Record, Record]:
        """PATCH: changes apply at once, the operation (and the write event) completes later."""
        record = self.get(sub, rg, name)
        with self.state.lock:
            if "tags" in body:
                record["tags"] = body.get("tags") or {}
            if isinstance(body.get("sku"), dict):
                record["sku"] = {**record["sku"], **body["sku"]}
            props = body.get("properties")
            if isinstance(props, dict):
                for field in ("storage", "backup", "highAvailability", "network"):
                    if isinstance(props.get(field), dict):
                        record["properties"][field] = {**record["properties"].get(field, {}), **props[field]}
                if "version" in props:
                    record["properties"]["version"] = str(props["version"])
            self.state.touch()
        return record, self._update_op(record, ectx, fault)

    def delete(self, sub: str, rg: str, name: str, ectx: dict[str, Any]) -> Record | None:
        record = self.find(server_id(sub, rg, name))
        if record is None:
            self.rgs.require(sub, rg)
            return None
        with self.state.lock:
            record["properties"]["state"] = "Dropping"
            self.state.touch()
            return self.ops.create(
                "pg.delete",
                float(self.config["latency_s"]["server_delete"]),
                provider="postgresql",
                subscription=sub,
                location=record["location"],
                resource_id=record["id"],
                ectx=ectx,
            )

    def _delete_done(self, op: Record) -> None:
        k = ids.key(op["resource_id"])
        with self.state.lock:
            record = self.state.delete("servers", k)
            for child in [c for c in self.state.collections["server_children"] if c.startswith(k + "/")]:
                self.state.delete("server_children", child)
        self.ops.finish(op, "Succeeded")
        if record is not None:
            self.events.emit("ResourceDeleteSuccess", record["id"], DELETE, op.get("ectx") or {})

    def list(self, index: str, group: str, start: int, size: int) -> tuple[list[Record], int]:
        keys = self.state.members(index, group)
        total = self.state.count(index, group)
        out = []
        for k in itertools.islice(keys, start, start + size):
            r = self.state.get("servers", k)
            if r is not None and self.visible(r):
                out.append(r)
        return out, total

    # -- actions: stop, start, restart ------------------------------------------------------------------
    def action(
        self, sub: str, rg: str, name: str, action: str, ectx: dict[str, Any], fault: dict[str, Any] | None
    ) -> Record:
        """Accept a POST action in the state it needs (409 otherwise); returns the operation to follow."""
        _, needs, during, _, latency = ACTIONS[action]
        record = self.get(sub, rg, name)
        with self.state.lock:
            current = record["properties"]["state"]
            if current != needs:
                raise ArmError(
                    f"The operation '{action}' cannot be performed while the server is in state '{current}'; "
                    f"it needs '{needs}'.",
                    code="InvalidServerState",
                    status=409,
                )
            if action == "stop" and record["properties"].get("replicationRole") != "Primary":
                raise BadRequest("A read replica cannot be stopped.", code="OperationNotSupportedOnReplica")
            record["properties"]["state"] = during
            self.state.touch()
            return self.ops.create(
                f"pg.{action}",
                float(self.config["latency_s"].get(latency, self.config["latency_s"]["server_update"])),
                provider="postgresql",
                subscription=sub,
                location=record["location"],
                resource_id=record["id"],
                ectx=ectx,
                fault=fault,
                action=action,
            )

    def _action_done(self, op: Record) -> None:
        action = str(op["action"])
        operation, needs, during, after, _ = ACTIONS[action]
        record = self.find(op["resource_id"])
        if record is None:
            self.ops.finish(op, "Canceled")
            return
        fault = op.get("fault")
        with self.state.lock:
            if record["properties"]["state"] == during:
                record["properties"]["state"] = needs if fault else after
            if action == "stop" and not fault:
                # Azure starts a server that stayed stopped for seven days, to apply maintenance.
                record["stopped_at"] = self.clock.now()
                due = self.clock.due(float(self.config.get("stopped_auto_start_s", 7 * 86400)))
                self.state.schedule(due, "pg.auto_start", f"{ids.key(record['id'])}|{record['stopped_at']}")
            self.state.touch()
        if fault:
            self.ops.finish(op, "Failed", {"code": fault["code"], "message": fault["message"]})
            return
        self.ops.finish(op, "Succeeded")
        self.events.emit("ResourceActionSuccess", record["id"], operation, op.get("ectx") or {})

    def _auto_start(self, key: str) -> None:
        server_key, _, stopped_at = key.rpartition("|")
        record = self.state.get("servers", server_key)
        if record is None or record["properties"]["state"] != "Stopped" or str(record.get("stopped_at")) != stopped_at:
            return  # started (or stopped again) since: this timer is stale
        with self.state.lock:
            record["properties"]["state"] = "Starting"
            self.state.touch()
            latency = float(self.config["latency_s"].get("server_start", self.config["latency_s"]["server_update"]))
            self.state.schedule(self.clock.due(latency), "pg.auto_start_done", server_key)

    def _auto_start_done(self, server_key: str) -> None:
        record = self.state.get("servers", server_key)
        if record is not None and record["properties"]["state"] == "Starting":
            with self.state.lock:
                record["properties"]["state"] = "Ready"
                self.state.touch()

    def force_state(self, resource_id: str, new_state: str) -> Record:
        """Admin hook: put a server in any state (Stopped, Disabled, ...) for tests."""
        if new_state not in SERVER_STATES:
            raise BadRequest(f"unknown server state {new_state!r}; expected one of {sorted(SERVER_STATES)}")
        record = self.find(resource_id)
        if record is None:
            raise ResourceNotFound(f"server {resource_id} not found")
        with self.state.lock:
            record["properties"]["state"] = new_state
            self.state.touch()
        return record

    def render(self, record: Record) -> dict[str, Any]:
        props = dict(record["properties"])  # internal fields (hidden_until, stopped_at) stay out of the body
        return {
            "sku": record["sku"],
            "systemData": {
                "createdBy": record.get("created_by", ""),
                "createdByType": "Application",
                "createdAt": self.clock.iso(record["created"]),
            },
            "properties": props,
            "location": record["location"],
            "tags": record["tags"],
            "id": record["id"],
            "name": record["name"],
            "type": SERVER_TYPE,
        }

    # -- child resources -------------------------------------------------------------------------------
    def put_child(
        self,
        sub: str,
        rg: str,
        name: str,
        kind: str,
        child: str,
        body: dict[str, Any],
        ectx: dict[str, Any],
        fault: dict[str, Any] | None,
    ) -> tuple[Record, Record]:
        parent = self.find(server_id(sub, rg, name))
        if parent is None:
            self.rgs.require(sub, rg)
            raise ArmError(
                f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.",
                code="ParentResourceNotFound",
                status=404,
            )
        child_type = CHILD_TYPES[kind.lower()]
        rid = f"{parent['id']}/{child_type}/{child}"
        k = ids.key(rid)
        props = body.get("properties") or {}
        if child_type == "firewallRules" and not ("startIpAddress" in props and "endIpAddress" in props):
            raise BadRequest("startIpAddress and endIpAddress are required.", code="InvalidParameterValue")
        with self.state.lock:
            record: Record = {"id": rid, "name": child, "type": f"{SERVER_TYPE}/{child_type}", "properties": props}
            self.state.put("server_children", k, record)
        return record, self._update_op(parent, ectx, fault, resource_id=rid)

    def get_child(self, sub: str, rg: str, name: str, kind: str, child: str) -> Record:
        rid = f"{server_id(sub, rg, name)}/{CHILD_TYPES[kind.lower()]}/{child}"
        record = self.state.get("server_children", ids.key(rid))
        if record is None:
            raise ResourceNotFound(
                f"The Resource '{SERVER_TYPE}/{name}/{kind}/{child}' under resource group '{rg}' was not found."
            )
        return record
