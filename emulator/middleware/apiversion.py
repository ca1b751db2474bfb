"""Stage 5: api-version. Each route accepts the stable versions its provider serves; others get ARM's 400."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core.errors import InvalidApiVersion, MissingApiVersion
from emulator.middleware.common import ctx_of, is_admin


@web.middleware
async def api_version(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin(request):
        return await handler(request)
    ctx = ctx_of(request)
    assert ctx.route is not None
    version = request.query.get("api-version")
    if not version:
        raise MissingApiVersion("The api-version query parameter (?api-version=) is required for all requests.")
    if version not in ctx.route.api_versions:
        supported = ",".join(sorted(ctx.route.api_versions, reverse=True))
        raise InvalidApiVersion(f"The api-version '{version}' is invalid. The supported versions are '{supported}'.")
    ctx.api_version = version
    return await handler(request)
