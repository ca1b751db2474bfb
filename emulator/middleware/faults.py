"""Stage 3: fault injection, before routing, so a fault can hit any path (even unknown ones)."""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core.errors import InternalServerError, ServiceUnavailable, Throttled
from emulator.middleware.common import ctx_of, hub_of, is_admin


def _reset(request: web.Request) -> web.StreamResponse:
    """Drop the TCP connection with an RST (SO_LINGER 0), as a crashed front end would."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    request["reset"] = True
    return web.Response(status=500)


@web.middleware
async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin(request):
        return await handler(request)
    hub = hub_of(request)
    rule = hub.faults.pick(request.method, request.path)
    if rule is None:
        return await handler(request)
    hub.stats.faults[rule.kind] += 1
    ctx = ctx_of(request)
    spec = rule.spec
    message = spec.get("error_message")
    if rule.kind == "429":
        retry = hub.clock.retry_after(float(spec.get("retry_after_s", 10)))
        raise Throttled(
            message or f"Number of requests exceeded. Please try again after '{retry}' seconds (injected fault).",
            code=spec.get("error_code"),
            headers={"Retry-After": str(retry)},
        )
    if rule.kind == "500":
        raise InternalServerError(
            message or f"Encountered internal server error. Diagnostic information: tracking id '{ctx.request_id}'.",
            code=spec.get("error_code"),
        )
    if rule.kind == "503":
        retry = hub.clock.retry_after(float(spec.get("retry_after_s", 10)))
        raise ServiceUnavailable(
            message or "The service is currently unavailable. Please try again later.",
            code=spec.get("error_code"),
            headers={"Retry-After": str(retry)},
        )
    if rule.kind == "reset":
        return _reset(request)
    if rule.kind == "slow":
        await asyncio.sleep(float(spec.get("delay_s", 5)))
    elif rule.kind == "operation_failed":
        ctx.operation_fault = {
            "code": spec.get("error_code") or "UserErrorInjectedFault",
            "message": message or "The operation failed (injected fault).",
        }
    elif rule.kind == "foreign_origin":
        ctx.async_origin = str(spec.get("origin") or "https://foreign-origin.example.invalid")
    return await handler(request)
