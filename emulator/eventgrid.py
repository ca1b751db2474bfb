"""Event Grid `Microsoft.Resources.*` events for ARM writes/deletes/actions, and their webhook delivery.

Every event is kept in a bounded in-memory list (`GET /_emulator/events`), and with `--event-webhook` it is
delivered at least once: after the subscription handshake (Event Grid schema: a SubscriptionValidationEvent
answered with `validationResponse`; CloudEvents: an OPTIONS request answered with `WebHook-Allowed-Origin`),
retried on Event Grid's schedule (scaled by the clock) until a 200-204, dead-lettered at once on 400/413, and
optionally delivered twice (`events.duplicate_probability`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import random
import uuid
from collections import deque
from typing import Any

import aiohttp

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.eventfilter import EventFilter
from emulator.stats import Stats

log = logging.getLogger("emulator.eventgrid")

CLAIM_NAMES = {
    "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
    "sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
}


def _claims(token_claims: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in token_claims.items():
        out[CLAIM_NAMES.get(name, name)] = str(value)
    return out


class EventBus:
    def __init__(
        self,
        clock: Clock,
        config: dict[str, Any],
        stats: Stats,
        tenant_id: str,
        rng: random.Random,
        webhook: str | None = None,
        schema: str = "eventgrid",
        delivery_filter: EventFilter | None = None,
    ) -> None:
        self.clock = clock
        self.config = config
        self.stats = stats
        self.tenant_id = tenant_id
        self.rng = rng
        self.webhook = webhook
        self.schema = schema
        self.delivery_filter = delivery_filter
        self.recent: deque[dict[str, Any]] = deque(maxlen=int(config["events"]["recent_limit"]))
        self.dead_letters: list[dict[str, Any]] = []
        self._queue: list[tuple[float, int, dict[str, Any], int]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._in_flight = 0
        self.handshake_done = False

    # -- building --------------------------------------------------------------------------------------
    def emit(
        self,
        event_type: str,
        resource_id: str,
        operation_name: str,
        ectx: dict[str, Any],
        status: str = "Succeeded",
    ) -> dict[str, Any]:
        """Record (and queue for delivery) one `Microsoft.Resources.<event_type>` event."""
        p = ids.parts(resource_id)
        sub = p.get("subscription", "")
        claims = dict(ectx.get("claims") or {})
        principal = str(ectx.get("principal_id") or claims.get("oid", ""))
        principal_type = "User" if claims.get("idtyp") == "user" else "ServicePrincipal"
        data: dict[str, Any] = {
            "authorization": {
                "scope": resource_id,
                "action": operation_name,
                "evidence": {
                    "role": "Owner",
                    "roleAssignmentScope": f"/subscriptions/{sub}",
                    "principalId": principal,
                    "principalType": principal_type,
                },
            },
            "claims": _claims(claims),
            "correlationId": str(ectx.get("correlation_id", "")),
            "httpRequest": {
                "clientRequestId": str(ectx.get("client_request_id", "")),
                "clientIpAddress": str(ectx.get("client_ip", "127.0.0.1")),
                "method": str(ectx.get("method", "")),
                "url": str(ectx.get("url", "")),
            },
            "resourceProvider": p.get("namespace", ""),
            "resourceUri": resource_id,
            "operationName": operation_name,
            "status": status,
            "subscriptionId": sub,
            "tenantId": self.tenant_id,
        }
        event = {
            "subject": resource_id,
            "eventType": f"Microsoft.Resources.{event_type}",
            "eventTime": self.clock.iso(self.clock.now()),
            "id": str(uuid.uuid4()),
            "data": data,
            "dataVersion": "2",
            "metadataVersion": "1",
            "topic": f"/subscriptions/{sub}",
        }
        self.recent.append(event)
        self.stats.events["emitted"] += 1
        if self.delivery_filter is not None and not self.delivery_filter.matches(event):
            self.stats.events["filtered"] += 1  # the topic had it; the event subscription does not want it
            return event
        if self.webhook:
            self._push(self.clock.due(float(self.config["events"].get("delay_s", 0))), event, 0)
        return event

    def as_cloud_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "source": event["topic"],
            "subject": event["subject"],
            "type": event["eventType"],
            "time": event["eventTime"],
            "id": event["id"],
            "data": event["data"],
            "specversion": "1.0",
        }

    # -- delivery --------------------------------------------------------------------------------------
    def pending(self) -> int:
        return len(self._queue) + self._in_flight

    def reset(self) -> None:
        self.recent.clear()
        self.dead_letters.clear()
        self._queue.clear()

    def _push(self, due: float, event: dict[str, Any], attempt: int) -> None:
        heapq.heappush(self._queue, (due, next(self._seq), event, attempt))
        self._wake.set()

    async def run(self) -> None:
        """The delivery loop (only started with a webhook): handshake, then `events.concurrency` workers."""
        timeout = aiohttp.ClientTimeout(total=float(self.config["events"]["timeout_s"]))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self.handshake_done:
                await self._handshake(session)
            workers = [
                asyncio.create_task(self._worker(session)) for _ in range(int(self.config["events"]["concurrency"]))
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        """Deliver due events one at a time; several workers run concurrently, as Event Grid does."""
        while True:
            if not self._queue or self._queue[0][0] > self.clock.now():
                wait = 0.5 if not self._queue else min(self._queue[0][0] - self.clock.now(), 0.5)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.001))
                continue
            _, _, event, attempt = heapq.heappop(self._queue)
            self._in_flight += 1
            try:
                await self._deliver(session, event, attempt)
            finally:
                self._in_flight -= 1

    async def _handshake(self, session: aiohttp.ClientSession) -> None:
        assert self.webhook is not None
        try:
            if self.schema == "cloudevents":
                async with session.options(
                    self.webhook, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
                ) as resp:
                    allowed = resp.headers.get("WebHook-Allowed-Origin", "")
                    ok = resp.status == 200 and allowed in ("*", "eventgrid.azure.net")
            else:
                code = str(uuid.uuid4())
                validation = [
                    {
                        "id": str(uuid.uuid4()),
                        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
                        "subject": "",
                        "data": {"validationCode": code, "validationUrl": ""},
                        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                        "eventTime": self.clock.iso(self.clock.now()),
                        "metadataVersion": "1",
                        "dataVersion": "1",
                    }
                ]
                async with session.post(
                    self.webhook, json=validation, headers={"aeg-event-type": "SubscriptionValidation"}
                ) as resp:
                    body: Any = await resp.json(content_type=None) if resp.status == 200 else None
                    ok = isinstance(body, dict) and body.get("validationResponse") == code
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("event subscription handshake failed: %s", exc)
            ok = False
        if ok:
            self.handshake_done = True
            self.stats.events["handshakes"] += 1
        else:
            self.stats.events["handshake_failures"] += 1
            await asyncio.sleep(max(0.05, self.clock.real(10)))

    async def _deliver(self, session: aiohttp.ClientSession, event: dict[str, Any], attempt: int) -> None:
        assert self.webhook is not None
        headers = {
            "aeg-event-type": "Notification",
            "aeg-subscription-name": "AUTOPROTECT-EMULATOR",
            "aeg-delivery-count": str(attempt),
            "aeg-data-version": "2",
            "aeg-metadata-version": "1",
        }
        if self.schema == "cloudevents":
            payload = json.dumps(self.as_cloud_event(event))
            headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
        else:
            payload = json.dumps([event])
            headers["Content-Type"] = "application/json"
        try:
            async with session.post(self.webhook, data=payload, headers=headers) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("event delivery attempt %d failed: %s", attempt + 1, exc)
            status = 0
        if 200 <= status <= 204:
            self.stats.events["delivered"] += 1
            if self.rng.random() < float(self.config["events"]["duplicate_probability"]):
                self.stats.events["duplicated"] += 1
                self._push(self.clock.now(), event, attempt + 1)
            return
        self.stats.events["failed_attempts"] += 1
        schedule = [float(s) for s in self.config["events"]["retry_schedule_s"]]
        if status in (400, 413) or attempt + 1 >= int(self.config["events"]["max_attempts"]):
            self.stats.events["dead_lettered"] += 1
            self.dead_letters.append({"event": event, "status": status, "attempts": attempt + 1})
            return
        delay = schedule[min(attempt, len(schedule) - 1)]
        self._push(self.clock.due(delay), event, attempt + 1)
