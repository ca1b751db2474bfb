"""The Event Grid webhook of a running dev host: both handshakes, one invocation per event, status codes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from scripts.stack import wait_until
from tests.devhost.conftest import DevHost, http

pytestmark = pytest.mark.integration

SERVER = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1"


def write_event(subject: str = SERVER) -> dict[str, Any]:
    """A ResourceWriteSuccess in the Event Grid schema, shaped like the service's published example."""
    return {
        "subject": subject,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2018-07-19T18:38:04.6117357Z",
        "id": str(uuid.uuid4()),
        "data": {
            "operationName": "Microsoft.DBforPostgreSQL/flexibleServers/write",
            "resourceUri": subject,
            "status": "Succeeded",
            "subscriptionId": "0000",
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": "/subscriptions/0000/resourceGroups/rg",
    }


def cloud_event(subject: str = SERVER) -> dict[str, Any]:
    return {
        "source": "/subscriptions/0000/resourceGroups/rg",
        "subject": subject,
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "time": "2018-07-19T18:38:04.6117357Z",
        "id": str(uuid.uuid4()),
        "data": {"operationName": "Microsoft.DBforPostgreSQL/flexibleServers/write", "resourceUri": subject},
        "specversion": "1.0",
    }


def webhook(host: DevHost, name: str = "on_event") -> str:
    return f"{host.url}/runtime/webhooks/EventGrid?functionName={name}"


NOTIFY = {"aeg-event-type": "Notification", "Content-Type": "application/json"}


def seen(host: DevHost, event_id: str, fn: str = "on_event") -> list[dict[str, Any]]:
    return [r for r in host.records(fn) if r["id"] == event_id]


def test_subscription_validation_handshake_echoes_the_code(devhost: DevHost) -> None:
    validation: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/0000",
        "subject": "",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2018-01-25T22:12:19.4556811Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
    reply = http("POST", webhook(devhost), [validation], {"aeg-event-type": "SubscriptionValidation"})
    assert reply.status == 200
    assert reply.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert seen(devhost, validation["id"]) == []


def test_cloudevents_options_handshake_allows_the_origin(devhost: DevHost) -> None:
    reply = http("OPTIONS", webhook(devhost), headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert reply.status == 200
    assert reply.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_each_event_grid_event_is_invoked_once(devhost: DevHost) -> None:
    events = [write_event(), write_event(SERVER + "2")]
    reply = http("POST", webhook(devhost), events, NOTIFY)
    assert reply.status == 200
    for event in events:
        rows = seen(devhost, event["id"])
        assert len(rows) == 1
        assert rows[0]["kind"] == "eventgrid"
        assert rows[0]["subject"] == event["subject"]
        assert rows[0]["data"]["operationName"] == "Microsoft.DBforPostgreSQL/flexibleServers/write"


def test_cloudevents_single_and_batch_become_cloud_events(devhost: DevHost) -> None:
    single = cloud_event()
    reply = http("POST", webhook(devhost), single, {"Content-Type": "application/cloudevents+json"})
    assert reply.status == 200
    batch = [cloud_event(), cloud_event()]
    reply = http("POST", webhook(devhost), batch, {"Content-Type": "application/cloudevents-batch+json"})
    assert reply.status == 200
    for event in [single, *batch]:
        rows = seen(devhost, event["id"])
        assert [r["kind"] for r in rows] == ["cloudevent"]


def test_async_function_is_invoked(devhost: DevHost) -> None:
    event = write_event()
    assert http("POST", webhook(devhost, "on_event_async"), [event], NOTIFY).status == 200
    assert len(seen(devhost, event["id"], "on_event_async")) == 1


def test_a_failing_invocation_answers_500_so_event_grid_retries(devhost: DevHost) -> None:
    good, bad = write_event(), write_event("fail/this-one")
    reply = http("POST", webhook(devhost), [good, bad], NOTIFY)
    assert reply.status == 500
    assert len(seen(devhost, good["id"])) == 1
    assert len(seen(devhost, bad["id"])) == 1


def test_malformed_json_is_400_and_unknown_function_404(devhost: DevHost) -> None:
    assert http("POST", webhook(devhost), b"{not json", NOTIFY).status == 400
    assert http("POST", webhook(devhost, "nope"), [write_event()], NOTIFY).status == 404
    assert http("POST", webhook(devhost), [write_event()], {"aeg-event-type": "Bogus"}).status == 400


def test_admin_status_and_invocation_accounting(devhost: DevHost) -> None:
    status = http("GET", f"{devhost.url}/admin/host/status").json()
    assert status["state"] == "Running"
    by_name = {f["name"]: f for f in status["functions"]}
    assert set(by_name) == {"on_event", "on_event_async", "on_job", "tick", "hello"}
    event = write_event()
    assert http("POST", webhook(devhost), [event], NOTIFY).status == 200
    counts = http("GET", f"{devhost.url}/admin/invocations").json()
    assert counts["functions"]["on_event"]["count"] >= 1
    assert counts["functions"]["on_event"]["mean_seconds"] >= 0
    assert counts["peak_rss_bytes"] > 10_000_000


def test_admin_runs_an_event_grid_function_by_hand(devhost: DevHost) -> None:
    event = write_event()
    reply = http("POST", f"{devhost.url}/admin/functions/on_event", {"input": json.dumps(event)})
    assert reply.status == 202
    wait_until(lambda: len(seen(devhost, event["id"])) == 1, timeout=10, what="the manual invocation")


def test_http_trigger_routes_and_returns_the_response(devhost: DevHost) -> None:
    reply = http("GET", f"{devhost.url}/api/hello/world?x=1")
    assert (reply.status, reply.body) == (201, b"hello world")
    assert http("POST", f"{devhost.url}/api/hello/world").status == 405
    assert devhost.records("hello")[-1]["query"] == {"x": "1"}
