"""Stage 4: routing. Finds the ARM operation for method + path; unknown routes get ARM's real errors."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core import ids
from emulator.core.errors import ArmError, InvalidResourceType, InvalidSubscriptionId
from emulator.middleware.common import ctx_of, hub_of, is_admin


@web.middleware
async def routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin(request):
        return await handler(request)
    hub = hub_of(request)
    ctx = ctx_of(request)
    route, params, others = hub.router.match(request.method, request.path)
    if route is None:
        if others:
            raise ArmError(
                f"The requested resource does not support http method '{request.method}'.",
                code="HttpMethodNotAllowed",
                status=405,
            )
        p = ids.parts(request.path)
        if "namespace" in p:
            raise InvalidResourceType(
                f"The resource type '{p.get('type', '').split('/', 1)[-1]}' could not be found in the namespace "
                f"'{p['namespace']}' for api version '{request.query.get('api-version', '')}'."
            )
        raise ArmError(f"The requested resource '{request.path}' was not found.", code="NotFound", status=404)
    sub = params.get("sub")
    if sub is not None and not ids.is_guid(sub):
        raise InvalidSubscriptionId(f"The provided subscription identifier '{sub}' is malformed or invalid.")
    ctx.route = route
    ctx.params = params
    ctx.kind = route.op_kind
    return await handler(request)
