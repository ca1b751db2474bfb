"""Stage 7: throttling. Token buckets per subscription and principal; 429 + Retry-After when empty."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core import ids
from emulator.core.errors import Throttled
from emulator.middleware.common import ctx_of, hub_of, is_admin


@web.middleware
async def throttle(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin(request):
        return await handler(request)
    hub = hub_of(request)
    ctx = ctx_of(request)
    sub = ctx.params.get("sub") or ids.parts(request.path).get("subscription", "")
    hub.stats.request(ctx.kind, ctx.principal_id)
    allowed, remaining, family, retry = hub.throttle.take(sub, ctx.principal_id, ctx.kind)
    header = f"x-ms-ratelimit-remaining-subscription-{family}"
    if not allowed:
        hub.stats.throttled[family] += 1
        raise Throttled(
            f"Number of '{family[:-1]}' requests for subscription '{sub}' actor '{ctx.principal_id}' exceeded. "
            f"Please try again after '{retry}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling for additional information.",
            headers={"Retry-After": str(retry), header: "0"},
        )
    ctx.response_headers[header] = str(remaining)
    extra = float(hub.config["latency_s"].get("request_ms", 0)) / 1000.0
    if extra > 0:
        await asyncio.sleep(hub.clock.real(extra))
    request["in_handler"] = True
    response = await handler(request)
    response.headers[header] = str(remaining)
    return response
