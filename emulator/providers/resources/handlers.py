"""HTTP for resource groups: parse, call the model, serialize, emit the ARM event."""

from __future__ import annotations

from aiohttp import web

from emulator.context import Ctx
from emulator.core.http import empty, json_response, read_json
from emulator.hub import Hub
from emulator.providers.resources.models import ResourceGroups

WRITE = "Microsoft.Resources/subscriptions/resourceGroups/write"
DELETE = "Microsoft.Resources/subscriptions/resourceGroups/delete"


class ResourceGroupHandlers:
    def __init__(self, hub: Hub, model: ResourceGroups) -> None:
        self.hub = hub
        self.model = model

    async def put(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        body = await read_json(request)
        record, created = self.model.create_or_update(ctx.params["sub"], ctx.params["rg"], body)
        self.hub.events.emit("ResourceWriteSuccess", record["id"], WRITE, ctx.event_context())
        return json_response(self.model.render(record), 201 if created else 200)

    async def get(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        return json_response(self.model.render(self.model.get(ctx.params["sub"], ctx.params["rg"])))

    async def head(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        try:
            self.model.get(ctx.params["sub"], ctx.params["rg"])
        except Exception:
            return empty(404)
        return empty(204)

    async def delete(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        record = self.model.delete(ctx.params["sub"], ctx.params["rg"])
        self.hub.events.emit("ResourceDeleteSuccess", record["id"], DELETE, ctx.event_context())
        return empty(200)

    async def list(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        return json_response({"value": [self.model.render(r) for r in self.model.list(ctx.params["sub"])]})

    async def list_subscriptions(self, request: web.Request, ctx: Ctx) -> web.StreamResponse:
        """GET /subscriptions: the default subscription and every one that holds a resource group, all Enabled.

        Approximation (docs/EMULATOR.md): real ARM lists the subscriptions the caller has any role on; the
        emulator's caller RBAC is opt-in, so it lists every subscription it knows, to every caller.
        """
        known = dict.fromkeys([self.hub.identity.default_subscription.lower(), *self.model.subscriptions()])
        tenant = self.hub.identity.tenant_id
        value = [
            {
                "id": f"/subscriptions/{sub}",
                "subscriptionId": sub,
                "displayName": f"emulated subscription {sub[:8]}",
                "tenantId": tenant,
                "state": "Enabled",
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "PayAsYouGo_2014-09-01",
                    "spendingLimit": "Off",
                },
                "authorizationSource": "RoleBased",
            }
            for sub in known
        ]
        return json_response({"value": value})
