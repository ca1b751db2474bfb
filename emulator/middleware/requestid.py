"""Stage 1: request ids. Creates the per-request context and stamps ARM's tracing headers on every response."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.context import Ctx
from emulator.middleware.common import hub_of


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    hub = hub_of(request)
    rid = str(uuid.uuid4())
    ctx = Ctx(
        request_id=rid,
        correlation_id=request.headers.get("x-ms-correlation-request-id") or rid,
        client_request_id=request.headers.get("x-ms-client-request-id"),
        origin=hub.origin,
        method=request.method,
        url=f"{hub.origin}{request.path_qs}",
        client_ip=request.remote or "127.0.0.1",
    )
    request["ctx"] = ctx
    response = await handler(request)
    response.headers.setdefault("x-ms-request-id", rid)
    response.headers.setdefault("x-ms-correlation-request-id", ctx.correlation_id)
    response.headers.setdefault("x-ms-routing-request-id", f"LOCAL:{rid}")
    if ctx.client_request_id:
        response.headers.setdefault("x-ms-client-request-id", ctx.client_request_id)
    for name, value in ctx.response_headers.items():
        response.headers.setdefault(name, value)
    hub.stats.status["reset" if request.get("reset") else str(response.status)] += 1
    return response
