"""Drives the real decorated functions of function_app against Azurite and the emulator.

The inputs are built with the azure-functions library's own types and converters (as the Python worker
does), the queue is the real Azurite queue (base64, dequeue counts, poison after maxDequeueCount), and the
timer is invoked directly. Nothing of ours is mocked: the functions build their own ARM client, credential and
storage clients from the environment, exactly as in Azure.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

import function_app
from shared import runtime
from shared.ledger import ServerRecord, State
from shared.protect import Protector

_FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
MAX_DEQUEUE = 5


def start_event(server_id: str) -> dict[str, Any]:
    """The ResourceActionSuccess Event Grid sends when a server is started."""
    event = write_event(server_id, operation="Microsoft.DBforPostgreSQL/flexibleServers/start/action")
    event["eventType"] = "Microsoft.Resources.ResourceActionSuccess"
    return event


def write_event(server_id: str, *, schema: str = "eventgrid", operation: str | None = None) -> dict[str, Any]:
    """A ResourceWriteSuccess event shaped like the spec's examples."""
    subscription = server_id.split("/")[2]
    data = {
        "authorization": {"scope": server_id, "action": operation or "Microsoft.DBforPostgreSQL/flexibleServers/write"},
        "claims": {},
        "correlationId": str(uuid.uuid4()),
        "resourceProvider": "Microsoft.DBforPostgreSQL",
        "resourceUri": server_id,
        "operationName": operation or "Microsoft.DBforPostgreSQL/flexibleServers/write",
        "status": "Succeeded",
        "subscriptionId": subscription,
        "tenantId": str(uuid.uuid4()),
    }
    now = datetime.now(UTC).isoformat()
    if schema == "cloudevents":
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/subscriptions/{subscription}",
            "type": "Microsoft.Resources.ResourceWriteSuccess",
            "subject": server_id,
            "time": now,
            "data": data,
        }
    return {
        "id": str(uuid.uuid4()),
        "topic": f"/subscriptions/{subscription}",
        "subject": server_id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": now,
        "data": data,
        "dataVersion": "",
        "metadataVersion": "1",
    }


class Harness:
    def __init__(self, connection_string: str, queue_name: str) -> None:
        self.queue = QueueClient.from_connection_string(connection_string, queue_name)
        self.poison = QueueClient.from_connection_string(connection_string, f"{queue_name}-poison")
        self.invocations: dict[str, int] = {}
        self._queue_ready = False

    @property
    def service(self) -> Protector:
        return runtime.protector()

    def deliver(self, event: dict[str, Any]) -> None:
        decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
        self._invoke("on_resource_write", decoded)

    def _invoke(self, name: str, argument: Any) -> None:
        self.invocations[name] = self.invocations.get(name, 0) + 1
        _FUNCTIONS[name](argument)

    def drain(self, max_rounds: int = 50) -> int:
        """Run the queue function on every visible message, with the host's retry and poison semantics."""
        if not self._queue_ready:
            self.service.queue.ensure_queue()  # as the host creates its trigger queue at start-up
            self._queue_ready = True
        handled = 0
        for _ in range(max_rounds):
            batch = list(self.queue.receive_messages(messages_per_page=32, visibility_timeout=30, max_messages=32))
            if not batch:
                return handled
            for raw in batch:
                handled += 1
                try:
                    body = base64.b64decode(raw.content, validate=True)
                except ValueError:
                    self.poison.send_message(raw.content)
                    self.queue.delete_message(raw)
                    continue
                message = QueueMessage(
                    id=raw.id, body=body, dequeue_count=raw.dequeue_count, pop_receipt=raw.pop_receipt
                )
                try:
                    self._invoke("protect_server", message)
                except Exception:
                    if (raw.dequeue_count or 0) >= MAX_DEQUEUE:
                        self.poison.send_message(raw.content)
                        self.queue.delete_message(raw)
                    else:
                        self.queue.update_message(raw, visibility_timeout=0)
                    continue
                self.queue.delete_message(raw)
        return handled

    def tick(self) -> None:
        self._invoke("poll_operations", TimerRequest(past_due=False))

    def sweep(self) -> None:
        self._invoke("reconcile", TimerRequest(past_due=False))

    def record(self, server_id: str) -> ServerRecord | None:
        from shared.ids import ServerId

        found = self.service.ledger.get(ServerId.parse(server_id))
        return None if found is None else found.record

    def run_until(self, condition: Callable[[], bool], *, timeout: float = 60, what: str = "condition") -> None:
        """Turn the crank (queue, then timer) until `condition` holds; polls, never sleeps a fixed time."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if condition():
                return
            self.tick()
            if condition():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def settle(self, server_id: str, *, timeout: float = 60) -> ServerRecord:
        """Run until the server reaches a final state; return its record."""
        self.run_until(
            lambda: (rec := self.record(server_id)) is not None and rec.final,
            timeout=timeout,
            what=f"{server_id} final",
        )
        record = self.record(server_id)
        assert record is not None
        return record

    def poisoned(self) -> list[str]:
        return (
            [m.content for m in self.poison.receive_messages(visibility_timeout=1)] if self._exists(self.poison) else []
        )

    @staticmethod
    def _exists(queue: QueueClient) -> bool:
        try:
            queue.get_queue_properties()
        except Exception:
            return False
        return True


FINAL = {State.PROTECTED, State.PROTECTED_ELSEWHERE, State.SKIPPED, State.GONE, State.NEEDS_ATTENTION}
