"""Stage 6: ARM authentication (only unexpired bearer tokens this emulator issued) and, when the
`caller_rbac.enabled` knob is on, authorization of the caller's action at the request scope (403
`AuthorizationFailed`, as ARM answers before the resource provider sees the request).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core import ids
from emulator.core.errors import ArmError, AuthenticationFailed, ExpiredAuthenticationToken, InvalidAuthenticationToken
from emulator.core.tokens import TokenError
from emulator.middleware.common import ctx_of, hub_of, is_admin


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin(request):
        return await handler(request)
    hub = hub_of(request)
    ctx = ctx_of(request)
    header = request.headers.get("Authorization", "")
    if not header:
        raise AuthenticationFailed("Authentication failed. The 'Authorization' header is missing.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
        )
    now = hub.clock.now()
    try:
        claims = hub.tokens.verify(token.strip(), now=now)
    except TokenError as exc:
        if exc.expired:
            raise ExpiredAuthenticationToken(
                f"The access token expiry UTC time is earlier than current UTC time '{hub.clock.iso(now)}'."
            ) from exc
        raise InvalidAuthenticationToken(str(exc)) from exc
    ctx.claims = claims
    ctx.principal_id = str(claims.get("oid", ""))
    if hub.config.get("caller_rbac", {}).get("enabled") and not claims.get("emu_superuser"):
        action = required_action(request.method, request.path, ctx.route.name if ctx.route else "")
        if not hub.models["role_assignments"].allows(ctx.principal_id, action, request.path):
            raise ArmError(
                f"The client '{ctx.principal_id}' with object id '{ctx.principal_id}' does not have authorization "
                f"to perform action '{action}' over scope '{request.path}' or the scope is invalid. If access was "
                "recently granted, please refresh your credentials.",
                code="AuthorizationFailed",
                status=403,
            )
    return await handler(request)


def required_action(method: str, path: str, route_action: str) -> str:
    """ARM's action for a request: `<type>/read|write|delete`, or the route's `/action` for POSTs."""
    if method == "POST" and route_action:
        return route_action
    p = ids.parts(path)
    resource_type = p.get("type") or (
        "Microsoft.Resources/subscriptions/resourceGroups"
        if "resource_group" in p
        else "Microsoft.Resources/subscriptions"
    )
    verb = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method, "write")
    return f"{resource_type}/{verb}"
