"""Managed identity endpoint (App Service protocol, api-version 2019-08-01) on its own plain-http port.

`GET {endpoint}?api-version=2019-08-01&resource=...` with `X-IDENTITY-HEADER` returns a bearer token for the
app's system-assigned identity, or for a user-assigned identity chosen by `client_id`, `principal_id` or
`mi_res_id` (created on first use with stable ids derived from the selector).
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any

from aiohttp import web

from emulator.core.store import Record
from emulator.hub import HUB_KEY, Hub
from emulator.middleware.trafficlog import TRAFFIC_LOG_KEY, record

NAMESPACE = uuid.UUID("6f1f3c4e-2a55-4c8e-9a47-8c1b0e9d7a10")


def _error(status: int, error: str, description: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"error": error, "error_description": description}).encode(),
        content_type="application/json",
    )


def user_assigned(hub: Hub, selector: str, value: str) -> Record:
    """Find or create the user-assigned identity named by `client_id`/`principal_id`/`mi_res_id`."""
    key = f"{selector}:{value.lower()}"
    with hub.state.lock:
        existing = hub.state.get("identities", key)
        if existing is not None:
            return existing
        if selector == "client_id":
            client_id, principal_id = value, str(uuid.uuid5(NAMESPACE, f"principal:{value.lower()}"))
        elif selector == "principal_id":
            client_id, principal_id = str(uuid.uuid5(NAMESPACE, f"client:{value.lower()}")), value
        else:
            client_id = str(uuid.uuid5(NAMESPACE, f"client:{value.lower()}"))
            principal_id = str(uuid.uuid5(NAMESPACE, f"principal:{value.lower()}"))
        identity: Record = {"client_id": client_id, "principal_id": principal_id, "selector": key}
        hub.state.put("identities", key, identity)
        return identity


async def token(request: web.Request) -> web.StreamResponse:
    hub: Hub = request.app[HUB_KEY]
    raw = await request.read()
    response = _token(request, hub)
    log = request.app.get(TRAFFIC_LOG_KEY)
    if log is not None:
        record(log, f"{hub.identity_endpoint}?{request.query_string}", request, raw, response)
    return response


def _token(request: web.Request, hub: Hub) -> web.Response:
    secret = request.headers.get("X-IDENTITY-HEADER", "")
    if not hmac.compare_digest(secret, hub.identity.identity_header):
        return _error(401, "invalid_request", "The X-IDENTITY-HEADER header is missing or invalid.")
    if request.query.get("api-version") != "2019-08-01":
        return _error(400, "invalid_request", "api-version must be 2019-08-01.")
    resource = request.query.get("resource", "")
    if resource.lower() not in hub.tokens.audiences:
        return _error(400, "invalid_resource", f"AADSTS500011: The resource principal named {resource} was not found.")
    client_id, principal_id = hub.identity.app_client_id, hub.identity.app_principal_id
    for selector in ("client_id", "principal_id", "mi_res_id"):
        value = request.query.get(selector)
        if value:
            ua = user_assigned(hub, selector, value)
            client_id, principal_id = ua["client_id"], ua["principal_id"]
            break
    lifetime = float(hub.config["token_lifetime_s"])
    access_token, expires_on = hub.tokens.mint(
        principal_id=principal_id, app_id=client_id, audience=resource, lifetime_s=lifetime, now=hub.clock.now()
    )
    hub.stats.request("token", principal_id)
    body: dict[str, Any] = {
        "access_token": access_token,
        "expires_on": expires_on,
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id,
    }
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


def make_app(hub: Hub) -> web.Application:
    app = web.Application()
    app[HUB_KEY] = hub
    app.router.add_get("/msi/token", token)
    return app
