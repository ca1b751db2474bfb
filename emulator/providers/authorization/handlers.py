"""HTTP for role assignments."""

from __future__ import annotations

from aiohttp import web

from emulator.context import Ctx
from emulator.core.http import empty, json_response, read_json
from emulator.hub import Hub
from emulator.providers.authorization.models import RA_TYPE, RoleAssignments


class RoleAssignmentHandlers:
    def __init__(self, hub: Hub, model: RoleAssignments) -> None:
        self.hub = hub
        self.model = model

    async def put(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        record, created = self.model.put(ctx.params["scope"], ctx.params["name"], body, ctx.principal_id)
        self.hub.events.emit("ResourceWriteSuccess", record["id"], f"{RA_TYPE}/write", ctx.event_context())
        return json_response(self.model.render(record), 201 if created else 200)

    async def get(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        return json_response(self.model.render(self.model.get(ctx.params["scope"], ctx.params["name"])))

    async def delete(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        record = self.model.delete(ctx.params["scope"], ctx.params["name"])
        if record is None:
            return empty(204)
        self.hub.events.emit("ResourceDeleteSuccess", record["id"], f"{RA_TYPE}/delete", ctx.event_context())
        return json_response(self.model.render(record), 200)

    async def list(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        records = self.model.list(ctx.params["scope"], request.query.get("$filter", ""))
        return json_response({"value": [self.model.render(r) for r in records]})
