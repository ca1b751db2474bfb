"""HTTP for Microsoft.DataProtection: parse, call `DataProtection`, serialize, emit ARM events."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.context import Ctx
from emulator.core import ids, lro
from emulator.core.errors import ArmError
from emulator.core.http import empty, json_response, page, read_json, skip
from emulator.core.store import Record
from emulator.hub import Hub
from emulator.providers.dataprotection.models import INSTANCE_TYPE, NS, POLICY_TYPE, VAULT_TYPE, DataProtection


def op_paths(op: Record) -> tuple[str, str]:
    """Location-scoped operationStatus and operationResults paths (what the service puts in its headers)."""
    base = f"/subscriptions/{op['subscription']}/providers/{NS}/locations/{op['location'].replace(' ', '').lower()}"
    return f"{base}/operationStatus/{op['id']}", f"{base}/operationResults/{op['id']}"


class DataProtectionHandlers:
    def __init__(self, hub: Hub, model: DataProtection) -> None:
        self.hub = hub
        self.model = model

    def _async_headers(self, ctx: Ctx, op: Record) -> dict[str, str]:
        status_path, result_path = op_paths(op)
        return lro.headers(ctx, status_path, result_path, self.hub.retry_after())

    # vaults
    async def put_vault(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        record, created = self.model.put_vault(p["sub"], p["rg"], p["vault"], body)
        self.hub.events.emit("ResourceWriteSuccess", record["id"], f"{VAULT_TYPE}/write", ctx.event_context())
        return json_response(self.model.render_vault(record), 201 if created else 200)

    async def get_vault(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(self.model.render_vault(self.model.vault(p["sub"], p["rg"], p["vault"])))

    async def delete_vault(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        record = self.model.delete_vault(p["sub"], p["rg"], p["vault"])
        if record is None:
            return empty(204)
        self.hub.events.emit("ResourceDeleteSuccess", record["id"], f"{VAULT_TYPE}/delete", ctx.event_context())
        return empty(200)

    async def list_vaults_rg(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        self.model.rgs.require(p["sub"], p["rg"])
        records = self.model.list_vaults("vaults_by_rg", ids.key(ids.rg_id(p["sub"], p["rg"])))
        return json_response({"value": [self.model.render_vault(r) for r in records]})

    async def list_vaults_sub(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        records = self.model.list_vaults("vaults_by_sub", ctx.params["sub"].lower())
        return json_response({"value": [self.model.render_vault(r) for r in records]})

    # policies
    async def put_policy(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        record, _ = self.model.put_policy(p["sub"], p["rg"], p["vault"], p["name"], body)
        self.hub.events.emit("ResourceWriteSuccess", record["id"], f"{POLICY_TYPE}/write", ctx.event_context())
        return json_response(self.model.render_policy(record), 200)

    async def get_policy(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(self.model.render_policy(self.model.policy(p["sub"], p["rg"], p["vault"], p["name"])))

    async def delete_policy(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        record = self.model.delete_policy(p["sub"], p["rg"], p["vault"], p["name"])
        if record is None:
            return empty(204)
        self.hub.events.emit("ResourceDeleteSuccess", record["id"], f"{POLICY_TYPE}/delete", ctx.event_context())
        return empty(200)

    async def list_policies(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        records = self.model.list_policies(p["sub"], p["rg"], p["vault"])
        return json_response({"value": [self.model.render_policy(r) for r in records]})

    # validate
    async def validate(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        op = self.model.validate(p["sub"], p["rg"], p["vault"], body, ctx.event_context(), ctx.operation_fault)
        vault_id = self.model.vault(p["sub"], p["rg"], p["vault"])["id"]
        self.hub.events.emit(
            "ResourceActionSuccess", f"{vault_id}", f"{VAULT_TYPE}/validateForBackup/action", ctx.event_context()
        )
        return empty(202, self._async_headers(ctx, op))

    # instances
    async def put_instance(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        record, op, created = self.model.put_instance(
            p["sub"], p["rg"], p["vault"], p["name"], body, ctx.event_context(), ctx.operation_fault
        )
        if op is None:
            return json_response(self.model.render_instance(record), 200)
        return json_response(self.model.render_instance(record), 201 if created else 200, self._async_headers(ctx, op))

    async def get_instance(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(self.model.render_instance(self.model.instance(p["sub"], p["rg"], p["vault"], p["name"])))

    async def delete_instance(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        op = self.model.delete_instance(p["sub"], p["rg"], p["vault"], p["name"], ctx.event_context())
        if op is None:
            return empty(204)
        return empty(202, self._async_headers(ctx, op))

    async def instance_action(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        """POST stopProtection/suspendBackups/resumeProtection/resumeBackups: 202, headers as the examples show
        (status at vault scope, the result at the resource group's backupInstances scope)."""
        p = ctx.params
        if await request.read():
            body = await read_json(request)
            if not isinstance(body, dict):
                raise ArmError("The request body must be an object.", code="InvalidRequestContent", status=400)
        op = self.model.instance_action(
            p["sub"], p["rg"], p["vault"], p["name"], p["action"], ctx.event_context(), ctx.operation_fault
        )
        return empty(202, self._instance_action_headers(ctx, op))

    def _instance_action_headers(self, ctx: Ctx, op: Record) -> dict[str, str]:
        """Status at vault scope, the result at the resource group's backupInstances scope (the examples' shape)."""
        scope = f"/subscriptions/{op['subscription']}/resourceGroups/{op['resource_group']}/providers/{NS}"
        status_path = f"{scope}/backupVaults/{op['vault']}/operationStatus/{op['id']}"
        result_path = f"{scope}/backupInstances/{op['instance']}/operationResults/{op['id']}"
        return lro.headers(ctx, status_path, result_path, self.hub.retry_after())

    async def list_deleted(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        records = self.model.list_deleted(p["sub"], p["rg"], p["vault"])
        return json_response({"value": [self.model.render_deleted(r) for r in records]})

    async def get_deleted(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(
            self.model.render_deleted(self.model.deleted_instance(p["sub"], p["rg"], p["vault"], p["name"]))
        )

    async def undelete(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        op = self.model.undelete(p["sub"], p["rg"], p["vault"], p["name"], ctx.event_context())
        return empty(202, self._instance_action_headers(ctx, op))

    async def list_instances(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        v = self.model.vault(p["sub"], p["rg"], p["vault"])
        size = int(self.hub.config["page_size"])
        start = skip(request)
        records, total = self.model.list_instances(ids.key(v["id"]), start, size)
        return json_response(page(request, ctx, [self.model.render_instance(r) for r in records], size, total, start))

    async def list_for_datasource(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        records = self.model.instances_for_datasource(ctx.params["scope"])
        return json_response({"value": [self.model.render_instance(r) for r in records]})

    # jobs, recovery points, restore
    async def list_jobs(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        v = self.model.vault(p["sub"], p["rg"], p["vault"])
        return json_response({"value": [self.model.jobs.render(j) for j in self.model.jobs.list(v["id"])]})

    async def get_job(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        v = self.model.vault(p["sub"], p["rg"], p["vault"])
        return json_response(self.model.jobs.render(self.model.jobs.get(v["id"], p["job"])))

    async def list_recovery_points(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        record = self.model.instance(p["sub"], p["rg"], p["vault"], p["name"])
        points = self.model.jobs.recovery_points(ids.key(record["id"]))
        size = int(self.hub.config["page_size"])
        start = skip(request)
        rendered = [self.model.jobs.render_recovery_point(r) for r in points[start : start + size]]
        return json_response(page(request, ctx, rendered, size, len(points), start))

    async def get_recovery_point(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        record = self.model.instance(p["sub"], p["rg"], p["vault"], p["name"])
        return json_response(self.model.jobs.render_recovery_point(self.model.jobs.recovery_point(record, p["rp"])))

    async def _optional_body(self, request: web.Request) -> Any:
        return await read_json(request) if await request.read() else {}

    async def adhoc_backup(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        body = await self._optional_body(request)
        op = self.model.adhoc_backup(
            p["sub"], p["rg"], p["vault"], p["name"], body, ctx.event_context(), ctx.operation_fault
        )
        return empty(202, self._instance_action_headers(ctx, op))

    async def sync(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        body = await self._optional_body(request)
        op = self.model.sync(p["sub"], p["rg"], p["vault"], p["name"], body, ctx.event_context(), ctx.operation_fault)
        return empty(202, self._instance_action_headers(ctx, op))

    async def validate_restore(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        """202; the result at the resource group's operationResults scope, as the ValidateRestore example shows."""
        p = ctx.params
        body = await self._optional_body(request)
        op = self.model.validate_restore(
            p["sub"], p["rg"], p["vault"], p["name"], body, ctx.event_context(), ctx.operation_fault
        )
        scope = f"/subscriptions/{op['subscription']}/resourceGroups/{op['resource_group']}/providers/{NS}"
        status_path = f"{scope}/backupVaults/{op['vault']}/operationStatus/{op['id']}"
        return empty(202, lro.headers(ctx, status_path, f"{scope}/operationResults/{op['id']}", self.hub.retry_after()))

    async def restore(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        body = await self._optional_body(request)
        op = self.model.restore(
            p["sub"], p["rg"], p["vault"], p["name"], body, ctx.event_context(), ctx.operation_fault
        )
        return empty(202, self._instance_action_headers(ctx, op))

    # operations
    def _op(self, ctx: Ctx) -> Record:
        op = self.hub.operations.get(ctx.params["op"])
        p = ctx.params
        ok = (
            op is not None and op.get("provider") == "dataprotection" and op["subscription"].lower() == p["sub"].lower()
        )
        if ok and op is not None and "rg" in p:
            ok = op.get("resource_group", "").lower() == p["rg"].lower()
        if ok and op is not None and "vault" in p:
            ok = op.get("vault", "").lower() == p["vault"].lower()
        if not ok or op is None:
            raise ArmError(f"Operation '{p['op']}' was not found.", code="UserErrorOperationNotFound", status=404)
        return op

    async def op_status(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        op = self._op(ctx)
        body: dict[str, Any] = {
            "id": request.path,
            "name": op["id"],
            "status": self.hub.operations.status_word(op),
            "startTime": self.hub.clock.iso(op["start"]),
        }
        if op["end"]:
            body["endTime"] = self.hub.clock.iso(op["end"])
        if op["error"]:
            body["error"] = op["error"]
        if op["result"] and op["status"] == "Succeeded":
            body["properties"] = op["result"]
        return json_response(body)

    async def op_result(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        op = self._op(ctx)
        if op["status"] == "InProgress":
            return empty(202, self._async_headers(ctx, op))
        if op["status"] == "Failed":
            return json_response({"error": op["error"]}, 400)
        if "bi" in ctx.params and ctx.params["bi"].lower() != str(op.get("instance", ctx.params["bi"])).lower():
            raise ArmError(f"Operation '{op['id']}' was not found.", code="UserErrorOperationNotFound", status=404)
        return json_response(op["result"] or {"objectType": "OperationJobExtendedInfo"}, 200)


def instance_type() -> str:
    return INSTANCE_TYPE
