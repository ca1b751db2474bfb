"""HTTP for PostgreSQL flexible servers: parse, call `Servers`, serialize."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.context import Ctx
from emulator.core import ids, lro
from emulator.core.errors import BadRequest, ResourceNotFound
from emulator.core.http import empty, json_response, page, read_json, skip
from emulator.core.store import Record
from emulator.hub import Hub
from emulator.providers.postgresql.models import NS, Servers


def _op_paths(op: Record) -> tuple[str, str]:
    base = f"/subscriptions/{op['subscription']}/providers/{NS}/locations/{op['location'].replace(' ', '').lower()}"
    return f"{base}/azureAsyncOperation/{op['id']}", f"{base}/operationResults/{op['id']}"


class ServerHandlers:
    def __init__(self, hub: Hub, model: Servers) -> None:
        self.hub = hub
        self.model = model

    async def put(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        _, op = self.model.create(p["sub"], p["rg"], p["name"], body, ctx.event_context(), ctx.operation_fault)
        status_path, result_path = _op_paths(op)
        return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))

    async def get(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(self.model.render(self.model.get(p["sub"], p["rg"], p["name"])))

    async def patch(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        _, op = self.model.update(p["sub"], p["rg"], p["name"], body, ctx.event_context(), ctx.operation_fault)
        status_path, result_path = _op_paths(op)
        return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))

    async def delete(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        op = self.model.delete(p["sub"], p["rg"], p["name"], ctx.event_context())
        if op is None:
            return empty(204)
        status_path, result_path = _op_paths(op)
        return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))

    async def action(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        """POST stop/start/restart: 202 with the async headers (restart takes an optional RestartParameter)."""
        p = ctx.params
        if p["action"].lower() == "restart" and await request.read():
            body = await read_json(request)
            if not isinstance(body, dict):
                raise BadRequest("The restart parameters must be an object.", code="InvalidRequestContent")
        op = self.model.action(
            p["sub"], p["rg"], p["name"], p["action"].lower(), ctx.event_context(), ctx.operation_fault
        )
        status_path, result_path = _op_paths(op)
        return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))

    async def list_sub(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        return self._list(request, ctx, "servers_by_sub", ctx.params["sub"].lower())

    async def list_rg(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        self.model.rgs.require(p["sub"], p["rg"])
        return self._list(request, ctx, "servers_by_rg", ids.key(ids.rg_id(p["sub"], p["rg"])))

    def _list(self, request: web.Request, ctx: Ctx, index: str, group: str) -> web.StreamResponse:
        size = int(self.hub.config["page_size"])
        start = skip(request)
        records, total = self.model.list(index, group, start, size)
        return json_response(page(request, ctx, [self.model.render(r) for r in records], size, total, start))

    async def put_child(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        p = ctx.params
        _, op = self.model.put_child(
            p["sub"], p["rg"], p["name"], p["kind"], p["child"], body, ctx.event_context(), ctx.operation_fault
        )
        status_path, result_path = _op_paths(op)
        return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))

    async def get_child(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        p = ctx.params
        return json_response(self.model.get_child(p["sub"], p["rg"], p["name"], p["kind"], p["child"]))

    async def op_status(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        op = self._op(ctx)
        body: dict[str, Any] = {
            "name": op["id"],
            "status": self.hub.operations.status_word(op),
            "startTime": self.hub.clock.iso(op["start"]),
        }
        if op["end"]:
            body["endTime"] = self.hub.clock.iso(op["end"])
        if op["error"]:
            body["error"] = op["error"]
        return json_response(body)

    async def op_result(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        op = self._op(ctx)
        if op["status"] == "InProgress":
            status_path, result_path = _op_paths(op)
            return empty(202, lro.headers(ctx, status_path, result_path, self.hub.retry_after()))
        if op["status"] == "Failed":
            return json_response({"error": op["error"]}, 400)
        if op["kind"] in ("pg.create", "pg.update"):
            record = self.model.find(op["resource_id"])
            if record is not None:
                return json_response(self.model.render(record))
            child = self.hub.state.get("server_children", ids.key(op["resource_id"]))
            if child is not None:
                return json_response(child)
        return empty(200)

    def _op(self, ctx: Ctx) -> Record:
        op = self.hub.operations.get(ctx.params["op"])
        if op is None or op.get("provider") != "postgresql" or op["subscription"].lower() != ctx.params["sub"].lower():
            raise ResourceNotFound(f"The operation '{ctx.params['op']}' was not found.", code="OperationNotFound")
        return op
