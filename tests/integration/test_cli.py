"""The operator CLI against the same Azurite queue and ledger the functions use."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from shared.cli import app
from shared.ledger import State

from .conftest import Stack

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_submit_then_status(stack: Stack):
    server = stack.estate.server(stack.new_group(), f"cli-{uuid.uuid4().hex[:8]}", wait=True)
    result = runner.invoke(app, ["submit", server, "--reason", "onboarding"], env=stack.env)
    assert result.exit_code == 0, result.output
    assert "queued" in result.output
    assert stack.harness.settle(server).state == State.PROTECTED

    result = runner.invoke(app, ["status", server, "--json"], env=stack.env)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["state"] == "Protected"
    assert row["vaultId"].lower() == stack.vault_id.lower()
    assert row["protectedAt"]

    table = runner.invoke(app, ["status"], env={**stack.env, "COLUMNS": "200"})
    assert table.exit_code == 0
    assert server.rsplit("/", 1)[1] in table.output

    again = runner.invoke(app, ["submit", server], env=stack.env)
    assert "re-queued" in again.output  # a manual submission re-checks a finished server


def test_submit_refuses_invalid_ids(stack: Stack):
    result = runner.invoke(app, ["submit", "/subscriptions/x/../../etc"], env=stack.env)
    assert result.exit_code == 2
    assert "not a flexible server ID" in result.output


def test_status_of_unknown_server(stack: Stack):
    unknown = (
        f"/subscriptions/{uuid.uuid4()}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/nope"
    )
    result = runner.invoke(app, ["status", unknown], env=stack.env)
    assert result.exit_code == 1
    assert "not in the ledger" in result.output
