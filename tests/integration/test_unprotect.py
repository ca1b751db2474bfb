"""Stopping protection: only an operator's own identity can do it, never the queue; it is recorded and told once."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from azure.functions.queue import QueueMessage
from typer.testing import CliRunner

from shared.cli import app
from shared.ledger import State

from .conftest import Stack, Webhook
from .harness import _FUNCTIONS, write_event

pytestmark = pytest.mark.integration
runner = CliRunner()


def _by_principal(stack: Stack, principal: str) -> dict[str, int]:
    return dict(stack.admin("GET", "stats")["requests_by_principal"].get(principal, {}))


def _operator(stack: Stack) -> tuple[dict[str, str], str]:
    """CLI settings for a person other than the app: the emulator's user-assigned identity of a new client ID."""
    client_id = str(uuid.uuid4())
    return {**stack.env, "AZURE_CLIENT_ID": client_id, "COLUMNS": "400"}, client_id


def _take_poisoned_reasons(stack: Stack) -> list[str]:
    """The reasons of the parked messages, removing them so later tests find the poison queue as it was."""
    reasons = []
    while batch := list(stack.harness.poison.receive_messages(max_messages=32)):
        for message in batch:
            reasons.append(json.loads(base64.b64decode(message.content))["reason"])
            stack.harness.poison.delete_message(message)
    return reasons


def test_a_queue_message_cannot_stop_protection(stack: Stack):
    """Finding 1: the forged message that deleted a server's backups is now parked with a reason, and no DELETE."""
    server = stack.estate.server(stack.new_group(), f"unq-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    app_principal = stack.banner["app_principal_id"]
    before = _by_principal(stack, app_principal).get("delete", 0)
    _take_poisoned_reasons(stack)  # what earlier tests parked is not this test's
    forged = {
        "version": 1,
        "kind": "unprotect",
        "serverId": server,
        "source": "manual",
        "reason": "requested with the CLI",
    }
    body = json.dumps(forged).encode()
    _FUNCTIONS["protect_server"](QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=1))
    stack.harness.drain()
    stack.harness.tick()
    assert any("no longer accepted" in reason for reason in _take_poisoned_reasons(stack))
    assert stack.harness.record(server).state == State.PROTECTED  # type: ignore[union-attr]
    assert len(stack.instances_for(server)) == 1
    assert _by_principal(stack, app_principal).get("delete", 0) == before


def test_unprotect_is_the_operators_own_recorded_and_notified_once(clean_faults: Stack, webhook: Webhook):
    stack = clean_faults
    server = stack.estate.server(stack.new_group(), f"un-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    protected = stack.harness.settle(server)
    assert protected.state == State.PROTECTED
    env, operator_client = _operator(stack)

    refused = runner.invoke(app, ["unprotect", server], env=env)
    assert refused.exit_code == 1, refused.output
    assert protected.instance_name in refused.output and "Nothing was changed" in refused.output
    assert len(stack.instances_for(server)) == 1

    app_deletes = _by_principal(stack, stack.banner["app_principal_id"]).get("delete", 0)
    done = runner.invoke(app, ["unprotect", server, "--yes", "--reason", "decommissioned"], env=env)
    assert done.exit_code == 0, done.output
    recorded = stack.harness.record(server)
    assert recorded is not None and recorded.state in (State.UNPROTECTING, State.UNPROTECTED)
    assert f"application {operator_client}" in recorded.stopped_by  # the caller as the Activity Log names it
    assert "decommissioned" in recorded.reason
    assert stack.instances_for(server) == []
    # The DELETE was the operator's: the app's identity sent none.
    assert _by_principal(stack, stack.banner["app_principal_id"]).get("delete", 0) == app_deletes

    record = stack.harness.settle(server)  # the app's poller confirms it, read-only
    assert record.state == State.UNPROTECTED
    assert operator_client in record.reason
    for _ in range(3):  # later events, polls and sweeps neither re-protect nor notify again
        stack.harness.deliver(write_event(server))
        stack.harness.drain()
        stack.harness.tick()
    stack.harness.sweep()
    stack.harness.drain()
    assert stack.harness.record(server).state == State.UNPROTECTED  # type: ignore[union-attr]
    mine = webhook.for_server(server)
    assert len(mine) == 1
    assert mine[0]["state"] == "Unprotected" and "protection was stopped" in mine[0]["text"]


def test_unprotect_of_a_server_without_protection_changes_nothing(stack: Stack):
    server = stack.estate.server(stack.new_group(), f"unn-{uuid.uuid4().hex[:8]}", wait=True)
    env, _ = _operator(stack)
    result = runner.invoke(app, ["unprotect", server, "--yes"], env=env)
    assert result.exit_code == 1
    assert "nothing to stop" in result.output
    assert stack.harness.record(server) is None
