"""HTTP triggers at `/api/{route}`, because they cost little and make the dev host usable for an app's probes.

Unlike the other triggers, the request is built directly as `func.HttpRequest` (the worker's converter expects
the host's gRPC message, which there is no point imitating here). Auth levels and function keys are ignored:
the dev host listens on loopback only by default.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import azure.functions as func
from aiohttp import web

from devhost.invoker import Invoker
from devhost.loader import HTTP, FunctionSpec

log = logging.getLogger("devhost.http")

ROUTE_PREFIX = "/api"
_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?\??\}")


def aiohttp_path(route: str) -> str:
    """Translate an ASP.NET route template: constraints and `?` are dropped, `{*rest}` becomes a catch-all."""

    def replace(match: re.Match[str]) -> str:
        return f"{{{match.group(2)}:.*}}" if match.group(1) else f"{{{match.group(2)}}}"

    return f"{ROUTE_PREFIX}/{_PARAM.sub(replace, route.strip('/'))}"


def to_response(result: Any) -> web.Response:
    """What the worker does with a `$return`: an HttpResponse as is, text as a 200, nothing as a 204."""
    if isinstance(result, func.HttpResponse):
        headers = {k: v for k, v in result.headers.items() if k.lower() != "content-type"}
        content_type = result.headers.get("Content-Type") or result.mimetype or "text/plain"
        return web.Response(
            status=result.status_code, body=result.get_body(), headers=headers, content_type=content_type.split(";")[0]
        )
    if result is None:
        return web.Response(status=204)
    body = result if isinstance(result, bytes) else str(result).encode()
    return web.Response(status=200, body=body, content_type="text/plain")


class HttpTriggers:
    def __init__(self, specs: list[FunctionSpec], invoker: Invoker) -> None:
        self._specs = [s for s in specs if s.trigger_type == HTTP]
        self._invoker = invoker

    def add_routes(self, app: web.Application) -> None:
        for spec in self._specs:
            methods = spec.properties["methods"] or ["*"]
            for method in methods:
                app.router.add_route(method, aiohttp_path(str(spec.properties["route"])), self._handler(spec))

    def _handler(self, spec: FunctionSpec) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            value = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query),
                route_params=dict(request.match_info),
                body=await request.read(),
            )
            outcome = await self._invoker.invoke(spec, value, reason="This function was programmatically called.")
            if not outcome.succeeded:
                return web.Response(status=500)
            return to_response(outcome.result)

        return handle
