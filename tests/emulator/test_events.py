"""Event Grid resource events: what is emitted (and validates against Resources.json) and how it is delivered."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.stack import Child
from tests.emulator.helpers import (
    PG_VERSION,
    RG_VERSION,
    Arm,
    World,
    create_server,
    eventually,
    new_sub,
    rg_path,
    server_path,
    start_special,
)
from tests.emulator.swagger import SpecSet

RESOURCES_JSON = "eventgrid/data-plane/Microsoft.Resources/stable/2018-01-01/Resources.json"
DATA_DEFINITIONS = {
    "Microsoft.Resources.ResourceWriteSuccess": "ResourceWriteSuccessData",
    "Microsoft.Resources.ResourceWriteFailure": "ResourceWriteFailureData",
    "Microsoft.Resources.ResourceDeleteSuccess": "ResourceDeleteSuccessData",
    "Microsoft.Resources.ResourceActionSuccess": "ResourceActionSuccessData",
    "Microsoft.Resources.ResourceActionFailure": "ResourceActionFailureData",
}


def events_for(arm: Arm, sub: str) -> list[dict[str, Any]]:
    recent = arm.admin("GET", "events", params={"limit": "5000"}).json()["recent"]
    return [e for e in recent if e["data"]["subscriptionId"] == sub]


def test_server_create_emits_two_writes_and_children_their_own(arm: Arm, specs_dir: Path) -> None:
    sub = new_sub()
    arm.call("PUT", rg_path(sub, "ev"), {"location": "westeurope"}, RG_VERSION)
    server = server_path(sub, "ev", "pg-ev")
    resp = arm.call(
        "PUT", server, {"location": "westeurope"}, PG_VERSION, headers={"x-ms-correlation-request-id": "c-1"}
    )
    assert resp.status_code == 202
    writes = [e for e in events_for(arm, sub) if e["subject"] == server]
    assert len(writes) == 1  # on accept, while the server is still Provisioning
    assert arm.call("GET", server, api_version=PG_VERSION).json()["properties"]["state"] == "Provisioning"
    arm.advance(400)
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    writes = [e for e in events_for(arm, sub) if e["subject"] == server]
    assert len(writes) == 2  # and again on completion
    for event in writes:
        assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
        assert event["data"]["operationName"] == "Microsoft.DBforPostgreSQL/flexibleServers/write"
        assert event["data"]["resourceUri"] == server
        assert event["data"]["correlationId"] == "c-1"
        assert event["data"]["status"] == "Succeeded"
        assert (
            event["data"]["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"]
            == (arm.info["app_principal_id"])
        )
        assert event["data"]["tenantId"] == arm.info["tenant_id"]
        assert event["topic"] == f"/subscriptions/{sub}"

    db = arm.call("PUT", f"{server}/databases/app", {"properties": {"charset": "UTF8"}}, PG_VERSION)
    assert db.status_code == 202
    arm.advance(100)
    arm.poll_status(db.headers["Azure-AsyncOperation"])
    child = [e for e in events_for(arm, sub) if e["subject"] == f"{server}/databases/app"]
    assert [e["data"]["operationName"] for e in child] == ["Microsoft.DBforPostgreSQL/flexibleServers/databases/write"]

    check_against_schema(events_for(arm, sub), specs_dir)


def test_actions_and_deletes_emit_events(arm: Arm, specs_dir: Path) -> None:
    world = World(arm)
    resp = world.validate()
    arm.poll_status(resp.headers["Azure-AsyncOperation"])
    deleted = arm.call("DELETE", world.server_id, api_version=PG_VERSION)
    assert deleted.status_code == 202
    arm.advance(300)
    arm.poll_status(deleted.headers["Azure-AsyncOperation"])
    events = events_for(arm, world.sub)
    kinds = {(e["eventType"], e["data"]["operationName"]) for e in events}
    assert (
        "Microsoft.Resources.ResourceActionSuccess",
        "Microsoft.DataProtection/backupVaults/validateForBackup/action",
    ) in kinds
    assert ("Microsoft.Resources.ResourceDeleteSuccess", "Microsoft.DBforPostgreSQL/flexibleServers/delete") in kinds
    assert ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Authorization/roleAssignments/write") in kinds
    assert ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.DataProtection/backupVaults/write") in kinds
    check_against_schema(events, specs_dir)


def test_failed_write_emits_write_failure(arm: Arm) -> None:
    world = World(arm, propagate=False)
    bad = arm.call("POST", f"{world.vault_id}/validateForBackup", {"properties": {}}, "2026-06-01")
    assert bad.status_code == 400
    failures = [e for e in events_for(arm, world.sub) if e["eventType"].endswith("Failure")]
    assert failures and failures[-1]["data"]["status"] == "Failed"


def check_against_schema(events: list[dict[str, Any]], specs_dir: Path) -> None:
    specs = SpecSet(specs_dir, [])
    example = json.loads(
        (specs_dir / RESOURCES_JSON)
        .parent.joinpath("examples/event-grid-schema/resource_write_success.json")
        .read_text()
    )
    for event in events:
        assert set(event) == set(example), event
        errors = specs.definition_errors(
            specs_dir / RESOURCES_JSON, DATA_DEFINITIONS[event["eventType"]], event["data"]
        )
        assert errors == [], errors
        assert set(example["data"]) <= set(event["data"])


# -- webhook delivery ------------------------------------------------------------------------------------


class Hook:
    """A local webhook that records what Event Grid would send and answers with scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_OPTIONS(self) -> None:
                hook.record("OPTIONS", self.headers, None)
                self.send_response(200)
                self.send_header("WebHook-Allowed-Origin", self.headers.get("WebHook-Request-Origin", ""))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.record("POST", self.headers, body)
                if self.headers.get("aeg-event-type") == "SubscriptionValidation":
                    payload = json.dumps({"validationResponse": body[0]["data"]["validationCode"]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                with hook.lock:
                    status = hook.script.pop(0) if hook.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, method: str, headers: Any, body: Any) -> None:
        with self.lock:
            self.requests.append({"method": method, "headers": dict(headers), "body": body})

    def notifications(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["headers"].get("aeg-event-type") == "Notification"]


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()


@pytest.fixture(scope="module")
def delivering(hook: Hook, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    child = start_special(tmp_path_factory.mktemp("events"), {}, event_webhook=hook.url, event_schema="eventgrid")
    try:
        yield child
    finally:
        child.stop()


def _write(child: Child) -> str:
    arm = Arm(child.info)
    sub = new_sub()
    arm.call("PUT", rg_path(sub, f"g{uuid.uuid4().hex[:6]}"), {"location": "westeurope"}, RG_VERSION)
    return sub


def _flush(child: Child) -> None:
    assert Arm(child.info).admin("POST", "events/flush", params={"timeout": "20"}).json()["pending"] == 0


def test_eventgrid_handshake_then_array_notifications(delivering: Child, hook: Hook) -> None:
    sub = _write(delivering)
    _flush(delivering)
    validation = [r for r in hook.requests if r["headers"].get("aeg-event-type") == "SubscriptionValidation"]
    assert len(validation) == 1
    assert validation[0]["body"][0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
    mine = [n for n in hook.notifications() if n["body"][0]["data"]["subscriptionId"] == sub]
    assert len(mine) == 1
    assert isinstance(mine[0]["body"], list)
    assert mine[0]["body"][0]["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"


def test_failed_deliveries_are_retried_until_2xx(delivering: Child, hook: Hook) -> None:
    hook.script = [500, 503, 204]
    sub = _write(delivering)
    _flush(delivering)
    mine = [n for n in hook.notifications() if n["body"][0]["data"]["subscriptionId"] == sub]
    assert [n["headers"]["aeg-delivery-count"] for n in mine] == ["0", "1", "2"]
    stats = Arm(delivering.info).admin("GET", "stats").json()["events"]
    assert stats["failed_attempts"] >= 2


def test_400_and_413_are_dead_lettered_at_once(delivering: Child, hook: Hook) -> None:
    for status in (400, 413):
        hook.script = [status]
        sub = _write(delivering)
        _flush(delivering)
        mine = [n for n in hook.notifications() if n["body"][0]["data"]["subscriptionId"] == sub]
        assert len(mine) == 1
    dead = Arm(delivering.info).admin("GET", "events").json()["dead_letters"]
    assert [d["status"] for d in dead][-2:] == [400, 413]


def test_duplicate_deliveries_knob(delivering: Child, hook: Hook) -> None:
    arm = Arm(delivering.info)
    arm.admin("PATCH", "config", {"events": {"duplicate_probability": 1.0}})
    try:
        hook.script = [200, 200, 500]  # the third (duplicate of the duplicate) fails and is retried
        sub = _write(delivering)
        eventually(
            lambda: len([n for n in hook.notifications() if n["body"][0]["data"]["subscriptionId"] == sub]) >= 2,
            "duplicate delivery",
        )
    finally:
        arm.admin("PATCH", "config", {"events": {"duplicate_probability": 0.0}})
    _flush(delivering)
    mine = [n for n in hook.notifications() if n["body"][0]["data"]["subscriptionId"] == sub]
    assert len({n["body"][0]["id"] for n in mine}) == 1  # same event id, delivered more than once
    assert arm.admin("GET", "stats").json()["events"]["duplicated"] >= 1


def test_cloudevents_schema_uses_options_handshake(tmp_path: Path) -> None:
    hook = Hook()
    child = start_special(tmp_path, {}, event_webhook=hook.url, event_schema="cloudevents")
    try:
        sub = _write(child)
        _flush(child)
        options = [r for r in hook.requests if r["method"] == "OPTIONS"]
        assert options and options[0]["headers"]["WebHook-Request-Origin"] == "eventgrid.azure.net"
        posts = [r for r in hook.requests if r["method"] == "POST"]
        mine = [p for p in posts if p["body"]["data"]["subscriptionId"] == sub]
        assert len(mine) == 1
        event = mine[0]["body"]
        assert event["specversion"] == "1.0"
        assert event["type"] == "Microsoft.Resources.ResourceWriteSuccess"
        assert event["source"] == f"/subscriptions/{sub}"
        assert mine[0]["headers"]["Content-Type"].startswith("application/cloudevents+json")
    finally:
        child.stop()
        hook.server.shutdown()


def test_events_from_any_principal(arm: Arm) -> None:
    user = str(uuid.uuid4())
    token = arm.admin("POST", "token", {"principal_id": user}).json()["access_token"]
    sub = new_sub()
    Arm(arm.info, token=token).call("PUT", rg_path(sub, "u"), {"location": "westeurope"}, RG_VERSION)
    create_server(Arm(arm.info, token=token), sub, "u", "by-user", ready=False)
    events = events_for(arm, sub)
    assert {e["data"]["authorization"]["evidence"]["principalId"] for e in events} == {user}
    assert all(e["data"]["authorization"]["evidence"]["principalType"] == "User" for e in events)
