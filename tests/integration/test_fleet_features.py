"""Fleet features against the emulator: reports from the CLI and webhook notifications once per incident."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from typer.testing import CliRunner

from shared.cli import app
from shared.ledger import State

from .conftest import Stack, Webhook
from .harness import write_event

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_report_in_every_format(stack: Stack):
    server = stack.estate.server(stack.new_group(), f"rep-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    as_json = runner.invoke(app, ["report", "--format", "json"], env=stack.env)
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert body["schema"] == "autoprotect.report.v1"
    as_csv = runner.invoke(app, ["report", "--format", "csv"], env=stack.env)
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    (mine,) = [row for row in rows if row["serverId"].lower() == server.lower()]
    assert mine["state"] == "Protected"
    as_html = runner.invoke(app, ["report", "--format", "html"], env=stack.env)
    assert as_html.output.lstrip().lower().startswith("<!doctype html>")
    assert "coverage" in as_html.output.lower()
    table = runner.invoke(app, ["report"], env={**stack.env, "COLUMNS": "200"})
    assert table.exit_code == 0
    bad = runner.invoke(app, ["report", "--format", "xml"], env=stack.env)
    assert bad.exit_code == 2


def test_one_notification_per_incident(clean_faults: Stack, webhook: Webhook):
    stack = clean_faults
    server = stack.estate.server(stack.new_group(), f"ntf-{uuid.uuid4().hex[:8]}", wait=True)
    fault = {
        "method": "PUT", "path": "/backupinstances/" + server.rsplit("/", 1)[1], "kind": "operation_failed",
        "count": 1, "error_code": "UserErrorDppDatasourceNotSupported", "error_message": "Storage above 1 TB",
    }  # fmt: skip
    stack.admin("POST", "faults", [fault])
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.NEEDS_ATTENTION
    for _ in range(3):  # more runs of every function: still one notification
        stack.harness.tick()
        stack.harness.deliver(write_event(server))
        stack.harness.drain()
    mine = webhook.for_server(server)
    assert len(mine) == 1
    assert mine[0]["errorCode"] == "UserErrorDppDatasourceNotSupported"

    stack.admin("POST", "faults", [fault])  # the same failure after a manual retry is a new incident
    runner.invoke(app, ["submit", server], env=stack.env)
    assert stack.harness.settle(server).state == State.NEEDS_ATTENTION
    assert len(webhook.for_server(server)) == 2


def test_auto_grant_gives_the_vault_its_roles_once_and_protects(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_AUTO_GRANT="true")
    group = stack.new_group(grant=False)
    server = stack.estate.server(group, f"ag-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    granted = record.grants_created.splitlines()
    assert len(granted) == 2
    assert any("c088a766-074b-43ba-90d4-1fb21feae531" in g and server in g for g in granted)
    assert any(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7" in g and g.split(" on ")[1].startswith(stack.estate.rg_id(group))
        for g in granted
    )
    principal = stack.vault["identity"]["principalId"]
    group_id = stack.estate.rg_id(group).lower()
    assignments = [
        a for a in stack.admin("GET", "state")["role_assignments"]
        if a["properties"]["principalId"] == principal and a["properties"]["scope"].lower().startswith(group_id)
    ]  # fmt: skip
    assert len(assignments) == 2  # deterministic names: retries and duplicate jobs never add a third
    assert len(stack.instances_for(server)) == 1


def test_without_auto_grant_attention_names_role_scope_and_principal(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_PERMISSION_WAIT_MINUTES="0.02")
    group = stack.new_group(grant=False)
    server = stack.estate.server(group, f"na-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.NEEDS_ATTENTION
    principal = stack.vault["identity"]["principalId"]
    assert "PostgreSQL Flexible Server Long Term Retention Backup Role" in record.error_action
    assert server in record.error_action and principal in record.error_action
    assert f"Reader (acdd72a7-3385-48ef-bd42-f606fba81ae7) on {stack.estate.rg_id(group)}" in record.error_action


def test_plan_lists_what_would_happen_and_changes_nothing(clean_faults: Stack):
    stack = clean_faults
    group = stack.new_group(grant=False)
    plain = stack.estate.server(group, f"pl-{uuid.uuid4().hex[:8]}", wait=True)
    opted_out = stack.estate.server(group, f"po-{uuid.uuid4().hex[:8]}", wait=True, tags={"autoprotect": "off"})
    stopped = stack.estate.server(group, f"ps-{uuid.uuid4().hex[:8]}", wait=True)
    stack.estate.server_action(stopped, "stop")
    env = {**stack.env, "AUTOPROTECT_AUTO_GRANT": "true"}
    before = stack.admin("GET", "stats")["requests"].get("write", 0)
    result = runner.invoke(app, ["plan", "--json"], env=env)
    assert result.exit_code == 0, result.output
    items = {item["server_id"].lower(): item for item in json.loads(result.output)}
    assert items[plain.lower()]["action"] == "protect"
    assert items[plain.lower()]["instance_name"].startswith(plain.rsplit("/", 1)[1])
    assert "Long Term Retention Backup Role" in items[plain.lower()]["grants"]
    assert (items[opted_out.lower()]["action"], items[opted_out.lower()]["rule"]) == ("skip", "opt-out-tag")
    assert (items[stopped.lower()]["action"], items[stopped.lower()]["detail"]) == (
        "wait",
        "stopped: server is Stopped",
    )
    assert stack.admin("GET", "stats")["requests"].get("write", 0) == before  # nothing was written
    assert stack.harness.record(plain) is None
    table = runner.invoke(app, ["plan"], env={**env, "COLUMNS": "250"})
    assert table.exit_code == 0 and "autoprotect plan" in table.output


def test_dry_run_records_plans_without_writing(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_DRY_RUN="true")
    server = stack.estate.server(stack.new_group(), f"dr-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PLANNED
    assert record.reason.startswith("dry run: would protect in bv-weu")
    assert stack.instances_for(server) == []


def test_an_app_identity_without_rights_gets_an_explanation_not_a_crash_loop(clean_faults: Stack):
    stack = clean_faults
    server = stack.estate.server(stack.new_group(), f"rb-{uuid.uuid4().hex[:8]}", wait=True)
    stack.admin("PATCH", "config", {"caller_rbac": {"enabled": True}})
    try:
        stack.harness.deliver(write_event(server))
        record = stack.harness.settle(server)
    finally:
        stack.admin("PATCH", "config", {"caller_rbac": {"enabled": False}})
    assert record.state == State.NEEDS_ATTENTION
    assert record.error_code == "AuthorizationFailed"
    assert stack.harness.poisoned() == []


def test_report_reads_time_to_first_backup_from_the_vault_jobs(stack: Stack):
    from scripts.stack import wait_until

    server = stack.estate.server(stack.new_group(), f"bk-{uuid.uuid4().hex[:8]}", wait=True)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED

    def first_backup_done() -> bool:
        url = stack.estate.arm.url_for(f"{stack.vault_id}/backupJobs", "2026-06-01")
        jobs = stack.estate.arm.get(url).body["value"]
        return any(
            j["properties"]["dataSourceId"].lower() == server.lower() and j["properties"]["status"] == "Completed"
            for j in jobs
        )

    wait_until(first_backup_done, timeout=60, what="the first scheduled backup to complete")
    result = runner.invoke(app, ["report", "--format", "json", "--with-backups"], env=stack.env)
    assert result.exit_code == 0, result.output
    latency = json.loads(result.output)["latency"]["timeToFirstBackup"]
    assert latency["available"] is True
    assert latency["count"] >= 1 and latency["p50Seconds"] is not None
    without = json.loads(runner.invoke(app, ["report", "--format", "json"], env=stack.env).output)
    assert without["latency"]["timeToFirstBackup"]["available"] is False
