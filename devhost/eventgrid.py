"""The Event Grid trigger's webhook, at the URL the Functions host exposes for it.

`classify` is sans-IO: it turns a request (method, headers, body) into either an immediate reply (handshakes,
errors) or the list of events to invoke, so the protocol rules are testable without a server. The handler then
invokes the function once per event, in order, and answers 200 only when every invocation succeeded: a 500
makes Event Grid redeliver (at least once), which is what a failed function means in Azure too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from azure.functions import meta

from devhost.invoker import Invoker, convert_input
from devhost.loader import EVENT_GRID, FunctionSpec
from shared.safejson import JsonRejected, loads

log = logging.getLogger("devhost.eventgrid")

WEBHOOK_PATH = "/runtime/webhooks/EventGrid"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENT_BATCH = "application/cloudevents-batch+json"
# Event Grid delivers at most 1 MB per event and per batch; resource events nest a handful of levels.
MAX_DELIVERY_BYTES = 1024 * 1024
MAX_DELIVERY_DEPTH = 64


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def classify(method: str, headers: Mapping[str, str], body: bytes) -> Reply | list[dict[str, Any]]:
    """Decide what a webhook request asks for: a reply to send now, or events to invoke."""
    if method == "OPTIONS":
        origin = headers.get("WebHook-Request-Origin")
        if not origin:
            return _error(400, "CloudEvents validation needs a WebHook-Request-Origin header")
        return Reply(200, None, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
    if method != "POST":
        return _error(405, f"{method} is not allowed on the Event Grid webhook")
    try:
        payload = loads(body or b"null", max_bytes=MAX_DELIVERY_BYTES, max_depth=MAX_DELIVERY_DEPTH)
    except JsonRejected as exc:
        return _error(400, f"body rejected: {exc}")
    event_type = headers.get("aeg-event-type", "")
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if event_type.lower() == "subscriptionvalidation":
        return _validation_reply(payload)
    if event_type.lower() == "unsubscribe":
        return Reply(202, None)
    if event_type and event_type.lower() != "notification":
        return _error(400, f"unknown aeg-event-type '{event_type}'")
    if content_type == CLOUDEVENT or (isinstance(payload, dict) and "specversion" in payload):
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        return _error(400, "expected a JSON array of events (or a single CloudEvent)")
    return payload


def _validation_reply(payload: Any) -> Reply:
    try:
        code = payload[0]["data"]["validationCode"]
    except (KeyError, IndexError, TypeError):
        return _error(400, "SubscriptionValidation without data.validationCode")
    return Reply(200, {"validationResponse": code})


class EventGridWebhook:
    """aiohttp handler for every Event Grid triggered function, selected by `functionName`."""

    def __init__(self, specs: list[FunctionSpec], invoker: Invoker) -> None:
        self._specs = {s.name.lower(): s for s in specs if s.trigger_type == EVENT_GRID}
        self._invoker = invoker

    def add_routes(self, app: web.Application) -> None:
        for path in (WEBHOOK_PATH, WEBHOOK_PATH.lower()):
            app.router.add_route("POST", path, self.handle)
            app.router.add_route("OPTIONS", path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.query.get("functionName", "")
        spec = self._specs.get(name.lower())
        if spec is None:
            return web.json_response({"error": f"no Event Grid function named '{name}'"}, status=404)
        outcome = classify(request.method, request.headers, await request.read())
        if isinstance(outcome, Reply):
            if outcome.status >= 400:
                log.warning("Event Grid webhook for %s: %s %s", spec.name, outcome.status, outcome.body)
            if outcome.body is None:
                return web.Response(status=outcome.status, headers=dict(outcome.headers))
            return web.json_response(outcome.body, status=outcome.status, headers=dict(outcome.headers))
        return await self._invoke_all(spec, outcome)

    async def _invoke_all(self, spec: FunctionSpec, events: list[dict[str, Any]]) -> web.Response:
        inputs = []
        for event in events:
            try:
                inputs.append(convert_input(EVENT_GRID, meta.Datum(json.dumps(event), "json")))
            except Exception as exc:  # the converter rejects what the worker would reject
                return web.json_response({"error": f"event {event.get('id')!r} is malformed: {exc}"}, status=400)
        failed = 0
        for value in inputs:
            outcome = await self._invoker.invoke(spec, value, reason="EventGrid trigger fired")
            failed += 0 if outcome.succeeded else 1
        if failed:
            return web.json_response({"error": f"{failed} of {len(inputs)} invocations failed"}, status=500)
        return web.Response(status=200)
