"""Hostile events and queue messages through the real functions: safe outcomes, no ARM call, no token leak."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import pytest
from azure.functions.queue import QueueMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Stack
from .harness import _FUNCTIONS, write_event

pytestmark = pytest.mark.integration

SUB = "2f6ea5f6-2a3c-4b2a-9d4e-0c1b2a3d4e5f"
BAD_IDS = [
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/db/../../x",
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/db%2F..",
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/db",
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/\u0440g-db",
    "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/db",
    "https://evil.example/subscriptions/x",
    "",
]


def _app_requests(stack: Stack) -> dict[str, int]:
    stats = stack.admin("GET", "stats")
    return dict(stats["requests_by_principal"].get(stack.banner["app_principal_id"], {}))


@given(
    resource=st.one_of(st.sampled_from(BAD_IDS), st.text(max_size=80)),
    operation=st.sampled_from(["Microsoft.DBforPostgreSQL/flexibleServers/write", "x", ""]),
    schema=st.sampled_from(["eventgrid", "cloudevents"]),
    mangle=st.sampled_from(["none", "data-not-object", "no-data", "subject-int"]),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_events_never_raise_or_reach_arm(stack: Stack, resource: str, operation: str, schema: str, mangle: str):
    event: dict[str, Any] = write_event(f"/subscriptions/{SUB}/x", schema=schema, operation=operation)
    event["subject"] = resource
    event["data"]["resourceUri"] = resource
    if mangle == "data-not-object":
        event["data"] = [resource]
    elif mangle == "no-data":
        event.pop("data")
    elif mangle == "subject-int":
        event["subject"] = 12345
    before, queued = _app_requests(stack), _queued(stack)
    stack.harness.deliver(event)  # must not raise
    assert _app_requests(stack) == before
    assert _queued(stack) == queued  # no job was created from a hostile event


def _queued(stack: Stack) -> int:
    return int(stack.harness.queue.get_queue_properties().approximate_message_count or 0)


def _message(body: bytes, dequeue_count: int = 1) -> QueueMessage:
    return QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=dequeue_count)


@given(
    body=st.one_of(
        st.binary(max_size=100),
        st.sampled_from(BAD_IDS).map(lambda i: json.dumps({"version": 1, "kind": "protect", "serverId": i}).encode()),
        st.just(json.dumps({"version": 1, "kind": "protect", "serverId": BAD_IDS[0], "x": 1}).encode()),
        st.just(b"{" * 20000),
    )
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_queue_messages_go_to_poison_with_a_reason(stack: Stack, body: bytes):
    before = _app_requests(stack)
    _FUNCTIONS["protect_server"](_message(body))  # must not raise: the reason goes with the poisoned message
    assert _app_requests(stack) == before
    parked = stack.harness.poison.receive_messages(max_messages=32, visibility_timeout=1)
    reasons = [json.loads(base64.b64decode(m.content))["reason"] for m in parked]
    assert reasons and all(reasons)
    for item in stack.harness.poison.receive_messages(max_messages=32):
        stack.harness.poison.delete_message(item)


def test_logs_never_contain_tokens_or_keys(stack: Stack, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    server = stack.estate.server(stack.new_group(), f"logs-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    stack.harness.settle(server)
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "logs-" in text  # the run was logged at all
    token = stack.harness.service.api._arm._bearer()
    key = stack.env["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0]
    for secret in (token, key, token.split(".")[-1], "sig=", "Bearer "):
        assert secret not in text


def test_subscription_allow_list_refuses_other_subscriptions(stack: Stack):
    other = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/elsewhere-db"
    stack.configure(AUTOPROTECT_SUBSCRIPTIONS=stack.estate.subscription_id)
    try:
        before = _app_requests(stack)
        stack.harness.deliver(write_event(other))
        assert stack.harness.record(other) is None
        body = json.dumps({"version": 1, "kind": "protect", "serverId": other}).encode()
        _FUNCTIONS["protect_server"](_message(body))
        assert _app_requests(stack) == before
        parked = [
            json.loads(base64.b64decode(m.content)) for m in stack.harness.poison.receive_messages(max_messages=32)
        ]
        assert any("not in AUTOPROTECT_SUBSCRIPTIONS" in item["reason"] for item in parked)
    finally:
        stack.configure()


def test_an_untrusted_certificate_is_refused_at_once(stack: Stack):
    from scripts.estate import OPERATOR_PRINCIPAL, AdminTokenCredential
    from shared.arm.client import ArmClient
    from shared.arm.errors import ArmError

    client = ArmClient(stack.banner["arm"], AdminTokenCredential(stack.banner, OPERATOR_PRINCIPAL), verify=True)
    with pytest.raises(ArmError, match="certificate not trusted"):
        client.get(client.url_for(stack.estate.rg_id("rg-backup"), "2021-04-01"))
    assert client.stats.retries == 0


def test_a_poll_that_keeps_failing_ends_in_needs_attention(stack: Stack):
    """An outstanding item the poller cannot handle (here a ledger value no version of the app wrote) is looked at
    a bounded number of times, then handed to a person with the reason, instead of being polled for ever."""
    from datetime import UTC, datetime

    from shared.ids import ServerId
    from shared.ledger import ServerRecord, State, format_time
    from shared.protect import MAX_POLL_ERRORS

    server = ServerId.parse(stack.estate.server(stack.new_group(), f"pe-{uuid.uuid4().hex[:8]}", wait=True))
    now = datetime.now(UTC)
    operation = (
        f"{stack.banner['arm']}/subscriptions/{server.subscription_id}/providers/Microsoft.DataProtection/locations/"
        "westeurope/operationStatus/YWJj?api-version=2026-06-01"
    )
    record = ServerRecord(server.id, State.VALIDATING, vault_id=stack.vault_id, policy_id=stack.policy_id)
    record.operation_url, record.operation_mode, record.next_check_at = operation, "bogus", format_time(now)
    ledger = stack.harness.service.ledger
    assert ledger.insert(record)
    ledger.mark_due(server, now)
    stack.harness.run_until(
        lambda: (found := stack.harness.record(server.id)) is not None and found.state == State.NEEDS_ATTENTION,
        timeout=60,
        what="NeedsAttention after repeated polling errors",
    )
    final = stack.harness.record(server.id)
    assert final is not None and final.error_code == "PollFailed"
    assert f"polling failed {MAX_POLL_ERRORS} times in a row" in final.reason
