"""End to end: the real functions, Azurite and the emulator over HTTPS, one server per test."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from scripts.estate import PG_API
from shared.ledger import State

from .conftest import Stack
from .harness import start_event, write_event

pytestmark = pytest.mark.integration


def _name(prefix: str = "pg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _ready_server(stack: Stack, group: str, **kw) -> str:
    return stack.estate.server(group, _name(), wait=True, **kw)


def test_new_server_is_protected_with_exactly_one_instance(stack: Stack):
    server = _ready_server(stack, stack.new_group())
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED, record
    assert record.vault_id.lower() == stack.vault_id.lower()
    assert record.rule == "region-vault"
    assert record.protected_at and record.transitions.keys() >= {"Queued", "Validating", "Configuring", "Protected"}
    instances = stack.instances_for(server)
    assert len(instances) == 1
    assert instances[0]["name"] == record.instance_name
    assert instances[0]["properties"]["currentProtectionState"] == "ProtectionConfigured"


def test_cloud_events_schema_works_the_same(stack: Stack):
    server = _ready_server(stack, stack.new_group())
    stack.harness.deliver(write_event(server, schema="cloudevents"))
    assert stack.harness.settle(server).state == State.PROTECTED
    assert len(stack.instances_for(server)) == 1


def test_duplicates_and_repeated_writes_leave_one_instance(stack: Stack):
    server = _ready_server(stack, stack.new_group())
    event = write_event(server)
    for _ in range(3):
        stack.harness.deliver(event)  # at-least-once redelivery
    stack.harness.deliver(write_event(server))  # the deployment's second write event
    stack.harness.deliver(write_event(server.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")))
    stack.harness.deliver(
        write_event(server + "/databases/app", operation="Microsoft.DBforPostgreSQL/flexibleServers/databases/write")
    )
    assert stack.harness.settle(server).state == State.PROTECTED
    stack.harness.deliver(write_event(server))  # a tag change long after
    stack.harness.drain()
    assert stack.harness.record(server).state == State.PROTECTED  # type: ignore[union-attr]
    assert len(stack.instances_for(server)) == 1


def test_already_protected_in_our_vault_adopts_the_instance(stack: Stack):
    group = stack.new_group()
    server = _ready_server(stack, group)
    stack.estate.protect_directly(stack.vault_id, stack.policy_id, server, "westeurope")
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert record.instance_name.startswith("manual-")
    assert len(stack.instances_for(server)) == 1


def test_already_protected_elsewhere_names_the_vault(stack: Stack):
    group = stack.new_group()
    stack.estate.grant_vault_roles(
        group,
        stack.estate.arm.get(stack.estate.arm.url_for(stack.other_vault_id, "2026-06-01")).body["identity"][
            "principalId"
        ],
    )
    server = _ready_server(stack, group)
    stack.estate.protect_directly(stack.other_vault_id, stack.other_policy_id, server, "westeurope")
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED_ELSEWHERE
    assert "bv-other" in record.reason
    assert len(stack.instances_for(server)) == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"tags": {"AutoProtect": "Off"}}, "excluded by tag AutoProtect=Off"),
        ({"location": "eastus"}, "no vault for region eastus"),
    ],
)
def test_skips_are_explained(stack: Stack, kwargs, reason):
    group = stack.new_group(location=kwargs.get("location", "westeurope"))
    server = _ready_server(stack, group, **kwargs)
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert (record.state, record.reason) == (State.SKIPPED, reason)
    assert stack.instances_for(server) == []


def test_replica_is_skipped(stack: Stack):
    group = stack.new_group()
    primary = _ready_server(stack, group)
    replica = stack.estate.server(group, _name("replica"), replica_of=primary, wait=True)
    stack.harness.deliver(write_event(replica))
    record = stack.harness.settle(replica)
    assert record.state == State.SKIPPED
    assert record.rule == "replica"
    assert "replica" in record.reason


def test_server_not_ready_yet_is_waited_for(stack: Stack):
    server = stack.estate.server(stack.new_group(), _name())  # not waiting: still Provisioning
    stack.harness.deliver(write_event(server))
    stack.harness.drain()
    early = stack.harness.record(server)
    assert early is not None
    assert early.state in (State.WAITING_FOR_SERVER, State.VALIDATING, State.CONFIGURING, State.PROTECTED)
    assert stack.harness.settle(server).state == State.PROTECTED
    assert len(stack.instances_for(server)) == 1


def test_a_stopped_server_waits_without_deadline_and_its_start_event_wakes_it(stack: Stack):
    server = _ready_server(stack, stack.new_group())
    stack.estate.server_action(server, "stop")
    stack.harness.deliver(write_event(server))
    stack.harness.drain()
    waiting = stack.harness.record(server)
    assert waiting is not None and waiting.state == State.WAITING_FOR_SERVER
    assert waiting.reason.startswith("stopped:") and waiting.error_code == "ServerStopped"
    assert waiting.final is False  # no NeedsAttention: a stopped server is not a failure
    stack.estate.server_action(server, "start")
    stack.harness.deliver(start_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED


def test_server_deleted_before_processing_is_gone_after_the_404_window(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_NOT_FOUND_WAIT_MINUTES="0.02")  # a 1.2 s window instead of 10 minutes
    server = _ready_server(stack, stack.new_group())
    stack.estate.delete(server, PG_API)
    stack.harness.deliver(write_event(server))
    stack.harness.drain()
    first = stack.harness.record(server)
    assert first is not None and first.state == State.WAITING_FOR_SERVER  # one 404 is not proof
    assert first.error_code == "ResourceNotFound"
    record = stack.harness.settle(server)
    assert (record.state, record.reason) == (State.GONE, "server no longer exists (404 for 0.02 min)")


def test_a_new_server_that_answers_404_at_first_is_protected(clean_faults: Stack):
    """ARM's read side can lag a create: the job sees 404, waits, and protects the server once it is visible."""
    stack = clean_faults
    stack.admin("PATCH", "config", {"read_after_write_lag_s": 300})  # 0.9 s on the fast profile's clock
    try:
        server = _ready_server(stack, stack.new_group())
    finally:
        stack.admin("PATCH", "config", {"read_after_write_lag_s": 0})
    stack.harness.deliver(write_event(server))
    stack.harness.drain()
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert State.WAITING_FOR_SERVER.value in record.transitions
    assert len(stack.instances_for(server)) == 1


def test_missing_permissions_are_waited_out_until_granted(stack: Stack):
    group = stack.new_group(grant=False)
    server = _ready_server(stack, group)
    stack.harness.deliver(write_event(server))
    stack.harness.run_until(
        lambda: stack.harness.record(server).state == State.WAITING_FOR_PERMISSIONS,  # type: ignore[union-attr]
        what="permission wait",
    )
    waiting = stack.harness.record(server)
    assert waiting is not None and waiting.error_code == "UserErrorMissingRequiredPermissions"
    stack.estate.grant_vault_roles(group, stack.vault["identity"]["principalId"])
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert record.error_code == ""
    assert len(stack.instances_for(server)) == 1


def test_missing_permissions_past_the_window_need_attention(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_PERMISSION_WAIT_MINUTES="0.02")
    server = _ready_server(stack, stack.new_group(grant=False))
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.NEEDS_ATTENTION
    assert record.error_code == "UserErrorMissingRequiredPermissions"
    assert record.error_action


def test_async_failure_records_code_message_and_action(clean_faults: Stack):
    stack = clean_faults
    group = stack.new_group()
    server = _ready_server(stack, group)
    stack.admin("POST", "faults", [{
        "method": "PUT", "path": r"/backupinstances/" + server.rsplit("/", 1)[1], "kind": "operation_failed",
        "error_code": "UserErrorDppDatasourceNotSupported", "error_message": "Server storage too large",
    }])  # fmt: skip
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.NEEDS_ATTENTION
    assert record.error_code == "UserErrorDppDatasourceNotSupported"
    assert "Server storage too large" in record.error_message


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset"])
def test_throttling_and_server_errors_end_protected(clean_faults: Stack, kind):
    stack = clean_faults
    server = _ready_server(stack, stack.new_group())
    name = server.rsplit("/", 1)[1]
    stack.admin("POST", "faults", [
        {"method": "*", "path": name, "kind": kind, "probability": 0.5, "count": 12},
        {"method": "GET", "path": "operationstatus", "kind": kind, "probability": 0.5, "count": 6},
    ])  # fmt: skip
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server, timeout=120)
    assert record.state == State.PROTECTED, record
    assert len(stack.instances_for(server)) == 1


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Recorder.received.append(dict(self.headers))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"status": "Succeeded"}).encode())

    def log_message(self, *args: object) -> None:
        pass


def test_operation_url_on_another_origin_is_refused_and_gets_no_token(clean_faults: Stack):
    stack = clean_faults
    listener = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        foreign = f"http://127.0.0.1:{listener.server_address[1]}"
        server = _ready_server(stack, stack.new_group())
        stack.admin("POST", "faults", [
            {"method": "POST", "path": "validateforbackup", "kind": "foreign_origin", "origin": foreign, "count": 1},
        ])  # fmt: skip
        stack.harness.deliver(write_event(server))
        record = stack.harness.settle(server)
    finally:
        listener.shutdown()
    assert record.state == State.NEEDS_ATTENTION
    assert record.error_code == "ForeignOperationUrl"
    assert foreign in record.error_message
    assert _Recorder.received == []  # nothing, let alone a token, reached the foreign origin


def test_transient_service_error_is_retried_then_protected(clean_faults: Stack):
    stack = clean_faults
    server = _ready_server(stack, stack.new_group())
    stack.admin("POST", "faults", [{
        "method": "POST", "path": "validateforbackup", "kind": "operation_failed", "count": 1,
        "error_code": "UserErrorDppInternalError", "error_message": "An internal error occurred.",
    }])  # fmt: skip
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert "Queued" in record.transitions
    assert len(stack.instances_for(server)) == 1


def test_a_lost_job_message_is_re_enqueued_by_the_watchdog(stack: Stack):
    server = _ready_server(stack, stack.new_group())
    stack.harness.drain()  # nothing else pending, so clearing the queue below loses exactly this job
    stack.harness.deliver(write_event(server))
    stack.harness.queue.clear_messages()  # the job is lost (a poisoned message, a deleted queue...)
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert len(stack.instances_for(server)) == 1
