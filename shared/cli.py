"""`autoprotect`: the operator's command line, over the same queue and ledger the functions use.

`submit` and `status` need storage access only (a connection string, or account URLs plus an Azure credential):
`submit` puts a job on the queue for the functions to run, `status` reads the ledger. `plan`, `report
--with-backups` and `unprotect` also read or write ARM, always with the operator's own Azure identity
(DefaultAzureCredential: `az login`, environment, workload or managed identity), never the app's. `unprotect` is
the only way to stop protection: the app's own role cannot delete a backup instance.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.config import SETTINGS, ConfigError, Settings
from shared.ids import InvalidResourceId, ServerId
from shared.intake import Intake
from shared.jobqueue import JobQueue
from shared.ledger import Ledger, ServerRecord
from shared.messages import Source
from shared.terminal import safe_text

app = typer.Typer(help="Make sure every PostgreSQL flexible server is protected by Azure Backup.", no_args_is_help=True)
console = Console()

_DEFAULTS = {spec.name: spec.default or "" for spec in SETTINGS}

QueueName = Annotated[str, typer.Option("--queue", envvar="AUTOPROTECT_JOBS_QUEUE", help="Jobs queue name.")]
TableName = Annotated[str, typer.Option("--table", envvar="AUTOPROTECT_LEDGER_TABLE", help="Ledger table name.")]


def _connect(queue: str, table: str) -> tuple[Intake, Ledger]:
    from shared.runtime import storage_clients

    try:
        queue_client, poison_client, table_client = storage_clients(queue, table)
    except RuntimeError as exc:
        console.print(safe_text(exc, style="red"))
        raise typer.Exit(2) from exc
    ledger = Ledger(table_client)
    jobs = JobQueue(queue_client, poison_client)
    watchdog_min = float(os.environ.get("AUTOPROTECT_WATCHDOG_MINUTES") or _DEFAULTS["AUTOPROTECT_WATCHDOG_MINUTES"])
    return Intake(ledger, jobs, watchdog_s=watchdog_min * 60), ledger


def _parse_server(server_id: str) -> ServerId:
    """A validated server ID, or exit 2 with the reason (an operator typo must never reach a queue or ARM)."""
    try:
        return ServerId.parse(server_id)
    except InvalidResourceId as exc:
        console.print(Text("not a flexible server ID: ", style="red") + safe_text(exc))
        raise typer.Exit(2) from exc


@app.command()
def submit(
    server_id: Annotated[str, typer.Argument(help="Full ARM ID of the flexible server.")],
    reason: Annotated[str, typer.Option(help="Why, for the ledger and the logs.")] = "",
    queue: QueueName = _DEFAULTS["AUTOPROTECT_JOBS_QUEUE"],
    table: TableName = _DEFAULTS["AUTOPROTECT_LEDGER_TABLE"],
) -> None:
    """Ask autoprotect to protect (or re-check) one server."""
    server = _parse_server(server_id)
    intake, _ = _connect(queue, table)
    intake.ledger.ensure_table()
    intake.queue.ensure_queue()
    outcome = intake.submit(server, source=Source.MANUAL, reason=reason or "submitted with the CLI")
    console.print(safe_text(f"{server.id}: {outcome}"))


@app.command()
def status(
    server_id: Annotated[str | None, typer.Argument(help="Only this server.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    queue: QueueName = _DEFAULTS["AUTOPROTECT_JOBS_QUEUE"],
    table: TableName = _DEFAULTS["AUTOPROTECT_LEDGER_TABLE"],
) -> None:
    """Show the ledger: state, reason, vault, last error with its recommended action, timestamps."""
    _, ledger = _connect(queue, table)
    if server_id:
        server = _parse_server(server_id)
        found = ledger.get(server)
        records = [found.record] if found else []
        if not records:
            console.print(f"{server.id} is not in the ledger")
            raise typer.Exit(1)
    else:
        records = sorted(ledger.all(), key=lambda r: r.server_id.lower())
    if as_json:
        typer.echo(json.dumps([status_row(r) for r in records], indent=2))
        return
    console.print(status_table(records))


def status_row(record: ServerRecord) -> dict[str, Any]:
    return {
        "serverId": record.server_id,
        "state": record.state.value,
        "reason": record.reason,
        "rule": record.rule,
        "vaultId": record.vault_id,
        "policyId": record.policy_id,
        "instanceName": record.instance_name,
        "error": {
            "code": record.error_code,
            "message": record.error_message,
            "recommendedAction": record.error_action,
        }
        if record.error_code
        else None,
        "firstSeenAt": record.first_seen_at,
        "stateChangedAt": record.state_changed_at,
        "protectedAt": record.protected_at,
        "stoppedBy": record.stopped_by,
        "transitions": record.transitions,
    }


@app.command()
def plan(
    subscription: Annotated[list[str] | None, typer.Option("--subscription", help="Only this subscription.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """What autoprotect would do for every server in scope, changing nothing (reads ARM with your identity)."""
    from shared.backup import BackupApi
    from shared.planner import Planner
    from shared.runtime import operator_arm_client

    settings = _settings()
    items = list(Planner(settings, BackupApi(operator_arm_client(settings), settings)).plan(subscription or ()))
    if as_json:
        typer.echo(json.dumps([item.as_dict() for item in items], indent=2))
        return
    grid = Table(title=f"autoprotect plan ({len(items)} servers)")
    for column in ("server", "action", "detail", "vault / policy", "instance", "roles to grant"):
        grid.add_column(column, overflow="fold")
    for item in items:
        where = f"{item.vault} / {item.policy}" if item.vault else ""
        cells = (item.server_id.rsplit("/", 1)[-1], item.action, item.detail, where, item.instance_name, item.grants)
        grid.add_row(*(safe_text(cell) for cell in cells))
    console.print(grid)


@app.command()
def unprotect(
    server_id: Annotated[str, typer.Argument(help="Full ARM ID of the flexible server.")],
    yes: Annotated[bool, typer.Option("--yes", help="Really stop protection and delete the backups.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for the ledger.")] = "",
    wait: Annotated[float, typer.Option(help="Seconds to follow the delete before leaving it to the app.")] = 600,
    queue: QueueName = _DEFAULTS["AUTOPROTECT_JOBS_QUEUE"],
    table: TableName = _DEFAULTS["AUTOPROTECT_LEDGER_TABLE"],
) -> None:
    """Stop protection and DELETE the server's backup instance with all its recovery points (your identity)."""
    from shared.arm.errors import ArmError
    from shared.backup import BackupApi
    from shared.runtime import operator_arm_client
    from shared.unprotect import Unprotector

    server = _parse_server(server_id)
    settings = _settings()
    _, ledger = _connect(queue, table)
    api = BackupApi(operator_arm_client(settings), settings)
    service = Unprotector(settings, api, ledger)
    try:
        target = service.find(server)
    except ArmError as exc:
        console.print(safe_text(f"cannot read {server.id}'s backup instances: {exc}", style="red"))
        raise typer.Exit(3) from exc
    if target is None:
        console.print(safe_text(f"no backup instance in autoprotect's vaults protects {server.id}; nothing to stop"))
        raise typer.Exit(1)
    if not yes:
        console.print(
            safe_text(
                f"Would stop protection of {server.id} and DELETE {target.describe()}, with its recovery points.\n"
            )
            + Text("Nothing was changed. Re-run with --yes to do it (as your own Azure identity).")
        )
        raise typer.Exit(1)
    caller = api.arm.caller()
    try:
        url = service.stop(target, caller=caller, reason=reason)
        error = service.follow(url, timeout_s=wait) if url else None
    except ArmError as exc:
        console.print(safe_text(f"stop protection refused for {server.id}: {exc}", style="red"))
        if exc.recommended_action:
            console.print(safe_text(exc.recommended_action))
        raise typer.Exit(3) from exc
    if error is not None and error.code != "StillRunning":
        console.print(safe_text(f"stop protection of {server.id} failed: {error}", style="red"))
        raise typer.Exit(3)
    done = "is still running; the app follows it" if error else "was accepted by Azure Backup"
    console.print(
        safe_text(
            f"Deleting {target.describe()} {done}. Recorded as requested by {caller}. The app's poller confirms it "
            f"and moves the server to Unprotected (notified once). Follow it with: autoprotect status {server.id}"
        )
    )


def _settings() -> Settings:
    """The app's settings (the CLI acts on the same vaults and scope), or exit 2 naming every bad setting."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        console.print(safe_text(exc, style="red"))
        raise typer.Exit(2) from exc


@app.command()
def report(
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or html.")] = "table",
    output: Annotated[str, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = "",
    with_backups: Annotated[
        bool, typer.Option("--with-backups", help="Read backup jobs from the vaults (ARM) for time to first backup.")
    ] = False,
    queue: QueueName = _DEFAULTS["AUTOPROTECT_JOBS_QUEUE"],
    table: TableName = _DEFAULTS["AUTOPROTECT_LEDGER_TABLE"],
) -> None:
    """Coverage by subscription, region and tier; unprotected servers; failures; time to protection."""
    from datetime import UTC, datetime

    from shared.report import FORMATS, build_report, render

    if fmt not in FORMATS:
        console.print(f"[red]unknown format {fmt!r}[/red]; choose one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    _, ledger = _connect(queue, table)
    first_backup_at = _first_backups() if with_backups else None
    rendered = render(build_report(ledger.all(), datetime.now(UTC), first_backup_at=first_backup_at), fmt)
    if isinstance(rendered, str):
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(rendered)
            console.print(f"report written to {output}")
        else:
            typer.echo(rendered)
    else:
        console.print(rendered)


def _first_backups() -> dict[str, datetime]:
    from shared.backup import BackupApi
    from shared.runtime import operator_arm_client

    settings = _settings()
    api = BackupApi(operator_arm_client(settings), settings)
    return api.first_backups([target.vault for target in settings.targets()])


def status_table(records: list[ServerRecord]) -> Table:
    table = Table(title=f"autoprotect ledger ({len(records)} servers)", show_lines=False)
    for column in ("server", "state", "reason", "vault", "last error / recommended action", "changed"):
        table.add_column(column, overflow="fold")
    for record in records:
        server = record.server
        error = f"{record.error_code}: {record.error_action or record.error_message}" if record.error_code else ""
        cells = (
            f"{server.resource_group}/{server.name}",
            record.state.value,
            record.reason,
            record.vault_id.rsplit("/", 1)[-1],
            error,
            record.state_changed_at[:19].replace("T", " "),
        )
        table.add_row(*(safe_text(cell) for cell in cells))  # ledger text is data: no markup, no control codes
    return table


def main() -> None:
    app()


if __name__ == "__main__":
    main()
