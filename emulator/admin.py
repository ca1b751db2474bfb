"""Admin API under `{arm}/_emulator/` (no ARM token; requires `X-Emulator-Admin: <identity_header>`).

It exists for tests, demos, benchmarks and chaos runs: reset state, read/patch live knobs, inject faults, mint
tokens for human principals, read counters and state, wait for event delivery, force a server's state.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from aiohttp import web

from emulator import config as config_mod
from emulator.core.errors import ArmError, BadRequest, render
from emulator.core.http import json_response
from emulator.hub import HUB_KEY, Hub

PREFIX = "/_emulator"


def _hub(request: web.Request) -> Hub:
    hub = request.app[HUB_KEY]
    secret = request.headers.get("X-Emulator-Admin", "")
    if not hmac.compare_digest(secret, hub.identity.identity_header):
        raise ArmError("The X-Emulator-Admin header is missing or wrong.", code="AdminUnauthorized", status=401)
    return hub


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from exc


def apply_config(hub: Hub, patch: dict[str, Any]) -> None:
    merged = config_mod.deep_merge(hub.config, patch)
    hub.config.clear()
    hub.config.update(merged)
    hub.clock.scale = float(hub.config["clock_scale"])
    if "faults" in patch:
        hub.faults.set(list(hub.config["faults"]))


async def health(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    return json_response({"status": "ok", "profile": hub.config.get("profile"), "time": hub.clock.now()})


async def reset(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    hub.state.reset()
    hub.stats.reset()
    hub.events.reset()
    hub.throttle.reset()
    hub.faults.set(list(hub.config.get("faults", [])))
    return json_response({"status": "reset"})


async def get_config(request: web.Request) -> web.StreamResponse:
    return json_response(_hub(request).config)


async def patch_config(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    body = await _body(request)
    if not isinstance(body, dict):
        raise BadRequest("config patch must be a JSON object")
    apply_config(hub, body)
    return json_response(hub.config)


async def post_faults(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    body = await _body(request)
    rules = body if isinstance(body, list) else body.get("rules", []) if isinstance(body, dict) else []
    try:
        hub.faults.add(rules)
    except (ValueError, TypeError) as exc:
        raise BadRequest(str(exc)) from exc
    return json_response({"rules": [r.as_dict() for r in hub.faults.rules]})


async def get_faults(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    return json_response({"rules": [r.as_dict() for r in hub.faults.rules]})


async def delete_faults(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    hub.faults.clear()
    return json_response({"rules": []})


async def post_token(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    body = await _body(request)
    principal = str(body.get("principal_id", "")) if isinstance(body, dict) else ""
    if not principal:
        raise BadRequest("principal_id is required")
    token, expires_on = hub.tokens.mint(
        principal_id=principal,
        app_id=str(body.get("app_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")),
        audience=str(body.get("audience", "https://management.azure.com")),
        lifetime_s=float(body.get("lifetime_s", hub.config["token_lifetime_s"])),
        identity_type="user",
        name=body.get("name"),
        now=hub.clock.now(),
        superuser=bool(body.get("superuser", False)),
    )
    return json_response({"access_token": token, "expires_on": expires_on, "token_type": "Bearer"})


async def stats(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    out = hub.stats.as_dict()
    out["events"]["pending"] = hub.events.pending()
    return json_response(out)


async def state(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    m = hub.models
    s = hub.state
    with s.lock:
        body = {
            "resource_groups": [m["resource_groups"].render(r) for r in s.collections["resource_groups"].values()],
            "servers": [m["servers"].render(r) for r in s.collections["servers"].values()],
            "vaults": [m["dataprotection"].render_vault(r) for r in s.collections["vaults"].values()],
            "policies": [m["dataprotection"].render_policy(r) for r in s.collections["policies"].values()],
            "instances": [m["dataprotection"].render_instance(r) for r in s.collections["instances"].values()],
            "role_assignments": [
                {**m["role_assignments"].render(r), "effective_at": r["effective_at"]}
                for r in s.collections["role_assignments"].values()
            ],
            "jobs": [m["dataprotection"].jobs.render(r) for r in s.collections["jobs"].values()],
            "operations": {
                "total": len(s.collections["operations"]),
                "in_progress": sum(1 for o in s.collections["operations"].values() if o["status"] == "InProgress"),
            },
            "pending_transitions": s.pending_transitions(),
        }
    return json_response(body)


async def events(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    limit = int(request.query.get("limit", "1000"))
    recent = list(hub.events.recent)[-limit:] if limit > 0 else []
    return json_response(
        {
            "pending": hub.events.pending(),
            "handshake_done": hub.events.handshake_done,
            "webhook": hub.events.webhook,
            "recent": recent,
            "dead_letters": hub.events.dead_letters,
        }
    )


async def flush_events(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    timeout = float(request.query.get("timeout", "30"))
    deadline = time.monotonic() + timeout
    while hub.events.webhook and hub.events.pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    pending = hub.events.pending() if hub.events.webhook else 0
    return json_response({"pending": pending}, 200 if pending == 0 else 504)


async def server_state(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    body = await _body(request)
    if not isinstance(body, dict) or "id" not in body or "state" not in body:
        raise BadRequest('body must be {"id": serverId, "state": "Ready|Stopped|..."}')
    model = hub.models["servers"]
    if "replicationRole" in body:
        record = model.find(str(body["id"]))
        if record is not None:
            record["properties"]["replicationRole"] = str(body["replicationRole"])
    return json_response(model.render(model.force_state(str(body["id"]), str(body["state"]))))


async def fail_backups(request: web.Request) -> web.StreamResponse:
    """Fail the next backup (or restore) job(s) of a server with a given error: a job failure Azure can produce
    (a transient service error, a throttled datasource...) that no ARM call of a client can cause."""
    hub = _hub(request)
    body = await _body(request)
    if not isinstance(body, dict) or not body.get("server") or not body.get("code"):
        raise BadRequest('body must be {"server": serverId, "code": "...", "message"?, "innerCode"?, "count"?}')
    record = hub.models["dataprotection"].jobs.queue_failure(
        str(body["server"]),
        str(body["code"]),
        str(body.get("message") or f"The backup failed with {body['code']}."),
        str(body["innerCode"]) if body.get("innerCode") else None,
        int(body.get("count", 1)),
    )
    return json_response(record)


async def not_found_window(request: web.Request) -> web.StreamResponse:
    """Make a server answer 404 (and leave listings) for `seconds` of service time: ARM's read lag on demand."""
    hub = _hub(request)
    body = await _body(request)
    if not isinstance(body, dict) or not body.get("id"):
        raise BadRequest('body must be {"id": serverId, "seconds": N}')
    model = hub.models["servers"]
    record = model.find(str(body["id"]))
    if record is None:
        raise ArmError(f"server {body['id']} does not exist", code="ResourceNotFound", status=404)
    record["hidden_until"] = hub.clock.due(float(body.get("seconds", 60)))
    hub.state.touch()
    return json_response({"id": record["id"], "hidden_until": record["hidden_until"]})


async def advance_clock(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    body = await _body(request)
    seconds = float(body.get("seconds", 0)) if isinstance(body, dict) else 0.0
    hub.clock.advance(seconds)
    ran = hub.operations.tick()
    return json_response({"offset_s": hub.clock.offset, "transitions_run": ran})


def _guard(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ArmError as exc:
            return render(exc)

    return wrapped


def register(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", f"{PREFIX}/health", _guard(health))
    add("POST", f"{PREFIX}/reset", _guard(reset))
    add("GET", f"{PREFIX}/config", _guard(get_config))
    add("PATCH", f"{PREFIX}/config", _guard(patch_config))
    add("GET", f"{PREFIX}/faults", _guard(get_faults))
    add("POST", f"{PREFIX}/faults", _guard(post_faults))
    add("DELETE", f"{PREFIX}/faults", _guard(delete_faults))
    add("POST", f"{PREFIX}/token", _guard(post_token))
    add("GET", f"{PREFIX}/stats", _guard(stats))
    add("GET", f"{PREFIX}/state", _guard(state))
    add("GET", f"{PREFIX}/events", _guard(events))
    add("POST", f"{PREFIX}/events/flush", _guard(flush_events))
    add("POST", f"{PREFIX}/servers/state", _guard(server_state))
    add("POST", f"{PREFIX}/clock/advance", _guard(advance_clock))
    add("POST", f"{PREFIX}/backups/fail", _guard(fail_backups))
    add("POST", f"{PREFIX}/servers/not-found", _guard(not_found_window))
