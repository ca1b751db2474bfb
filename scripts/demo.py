"""`make demo`: the whole flow locally, on the embedded emulator, ending in a report.

Starts Azurite, the emulator (its Event Grid webhook pointed at the dev host) and the dev host running the real
function_app; builds a small, varied estate through ARM as a platform team would; shows every server's state
live until each is final; prints a per-server report; stops everything it started (also on Ctrl-C or failure).
`make run` (`--keep-running`) starts the same stack with the vault and policy, then waits for you.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from scripts.estate import Estate
from scripts.stack import EVENT_FILTER, REPO_ROOT, Child, free_port, start_azurite, start_devhost, start_emulator
from shared.ids import ServerId
from shared.ledger import FINAL_STATES, Ledger, ServerRecord, State, parse_time

DEMO_DIR = REPO_ROOT / ".demo"
REGION = "westeurope"
QUEUE, TABLE = "autoprotect-jobs", "autoprotect"
console = Console()


@dataclass
class DemoServer:
    label: str
    group: str
    name: str
    expect: str
    kwargs: dict[str, Any]
    server_id: str = ""
    created_at: float = 0.0


def app_settings(banner: dict[str, Any], connection_string: str, vault_id: str, policy_id: str) -> dict[str, str]:
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": connection_string,
        "IDENTITY_ENDPOINT": banner["identity_endpoint"],
        "IDENTITY_HEADER": banner["identity_header"],
        "REQUESTS_CA_BUNDLE": banner["ca_bundle"],
        "AUTOPROTECT_ARM_ENDPOINT": banner["arm"],
        "AUTOPROTECT_DEFAULT_VAULT_ID": vault_id,
        "AUTOPROTECT_DEFAULT_POLICY_ID": policy_id,
        # Closed scope, as the Bicep writes it: the subscriptions the estate lives in.
        "AUTOPROTECT_SUBSCRIPTIONS": ",".join(banner["subscription_ids"]),
        "AUTOPROTECT_JOBS_QUEUE": QUEUE,
        "AUTOPROTECT_LEDGER_TABLE": TABLE,
        "AUTOPROTECT_POLL_SCHEDULE": "*/2 * * * * *",
        "AUTOPROTECT_SWEEP_SCHEDULE": "0 */5 * * * *",
        "AUTOPROTECT_RETRY_SECONDS": "1",
        "AUTOPROTECT_WATCHDOG_MINUTES": "1",
        "AUTOPROTECT_PERMISSION_WAIT_MINUTES": "5",
    }


class LocalStack:
    """The three processes, started in dependency order and stopped in reverse, whatever happens."""

    def __init__(self, workdir: Path, profile: str) -> None:
        self.workdir = workdir
        self.profile = profile
        self.children: list[Child] = []
        self.devhost_port = free_port()

    def start(self) -> tuple[dict[str, Any], str]:
        logs = self.workdir
        console.print("[bold]Starting Azurite[/bold] (queues and tables) ...")
        azurite = start_azurite(logs, data_dir=self.workdir / "azurite")
        self.children.append(azurite)
        console.print(f"[bold]Starting the Azure emulator[/bold] (profile {self.profile}) ...")
        webhook = f"http://127.0.0.1:{self.devhost_port}/runtime/webhooks/EventGrid?functionName=on_resource_write"
        emulator = start_emulator(
            logs,
            self.workdir / "emulator-data",
            profile=self.profile,
            traffic_log=self.workdir / "traffic.jsonl",
            event_webhook=webhook,
            event_filter=EVENT_FILTER,
        )
        self.children.append(emulator)
        return emulator.info, str(azurite.info["connection_string"])

    def start_devhost(self, settings: dict[str, str]) -> Child:
        console.print("[bold]Starting the dev host[/bold] with function_app.py ...")
        devhost = start_devhost(self.workdir, settings, port=self.devhost_port)
        self.children.append(devhost)
        return devhost

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def estate_plan() -> list[DemoServer]:
    return [
        DemoServer("ordinary", "rg-apps", "orders-db", "Protected", {}),
        DemoServer("ordinary", "rg-apps", "billing-db", "Protected", {}),
        DemoServer("ordinary", "rg-apps", "inventory-db", "Protected", {}),
        DemoServer("opted out by tag", "rg-apps", "scratch-db", "Skipped", {"tags": {"autoprotect": "off"}}),
        DemoServer("read replica", "rg-apps", "orders-db-replica", "Skipped", {"replica_of": "orders-db"}),
        DemoServer("region without a vault", "rg-us", "analytics-us", "Skipped", {"location": "eastus"}),
        DemoServer("protected by another team", "rg-apps", "legacy-db", "ProtectedElsewhere", {}),
        DemoServer("vault lacks permissions at first", "rg-payments", "payments-db", "Protected", {}),
    ]


def build_estate(estate: Estate) -> tuple[dict[str, Any], str, dict[str, Any], str]:
    console.print("[bold]Creating the backup vaults and policies[/bold] ...")
    estate.resource_group("rg-backup", REGION)
    vault = estate.vault("rg-backup", "bv-westeurope", REGION)
    policy_id = estate.policy(vault["id"])
    team_vault = estate.vault("rg-backup", "bv-team-legacy", REGION)
    team_policy = estate.policy(team_vault["id"])
    return vault, policy_id, team_vault, team_policy


def create_servers(estate: Estate, plan: list[DemoServer], vault: dict[str, Any], team_vault: dict[str, Any],
                   team_policy: str) -> None:  # fmt: skip
    estate.resource_group("rg-apps", REGION)
    estate.resource_group("rg-us", "eastus")
    estate.resource_group("rg-payments", REGION)
    estate.grant_vault_roles("rg-apps", vault["identity"]["principalId"])
    estate.grant_vault_roles("rg-apps", team_vault["identity"]["principalId"])
    by_name: dict[str, str] = {}
    legacy = next(s for s in plan if s.name == "legacy-db")
    # The other team protected legacy-db before autoprotect existed.
    legacy.server_id = estate.server(legacy.group, legacy.name, location=REGION, wait=True)
    estate.protect_directly(team_vault["id"], team_policy, legacy.server_id, REGION)
    legacy.created_at = time.time()
    by_name[legacy.name] = legacy.server_id
    for item in plan:
        if item.server_id:
            continue
        kwargs = dict(item.kwargs)
        if "replica_of" in kwargs:
            kwargs["replica_of"] = by_name[kwargs["replica_of"]]
        item.created_at = time.time()
        item.server_id = estate.server(item.group, item.name, **kwargs)
        by_name[item.name] = item.server_id
        console.print(f"  created {item.group}/{item.name:<20} [dim]({item.label})[/dim]")


def progress_table(plan: list[DemoServer], records: dict[str, ServerRecord], started: float) -> Table:
    done = sum(1 for item in plan if _final(records.get(item.server_id.lower())))
    table = Table(title=f"autoprotect: {done}/{len(plan)} servers final  ·  {time.time() - started:5.1f}s")
    for column in ("server", "scenario", "state", "reason"):
        table.add_column(column, overflow="fold")
    for item in plan:
        record = records.get(item.server_id.lower())
        state = record.state.value if record else "(waiting for event)"
        style = {"Protected": "green", "NeedsAttention": "red", "Skipped": "yellow"}.get(state, "cyan")
        table.add_row(item.name, item.label, f"[{style}]{state}[/{style}]", record.reason if record else "")
    return table


def _final(record: ServerRecord | None) -> bool:
    return record is not None and record.state in FINAL_STATES


def read_ledger(ledger: Ledger, plan: list[DemoServer]) -> dict[str, ServerRecord]:
    records: dict[str, ServerRecord] = {}
    for item in plan:
        found = ledger.get(ServerId.parse(item.server_id))
        if found:
            records[item.server_id.lower()] = found.record
    return records


def watch(ledger: Ledger, plan: list[DemoServer], estate: Estate, timeout: float) -> dict[str, ServerRecord]:
    """Refresh the table until every server is final; grant the missing roles once the app asks for them."""
    started = time.time()
    granted = False
    payments = next(item for item in plan if item.name == "payments-db")
    records: dict[str, ServerRecord] = {}
    with Live(progress_table(plan, records, started), console=console, refresh_per_second=4) as live:
        while time.time() - started < timeout:
            records = read_ledger(ledger, plan)
            waiting = records.get(payments.server_id.lower())
            if not granted and waiting is not None and waiting.state == State.WAITING_FOR_PERMISSIONS:
                live.console.print(
                    "[magenta]payments-db: the vault lacks its roles; granting them now, as an admin would[/magenta]"
                )
                vault_principal = _principal_of(estate, waiting.vault_id)
                estate.grant_vault_roles(payments.group, vault_principal)
                granted = True
            live.update(progress_table(plan, records, started))
            if all(_final(records.get(item.server_id.lower())) for item in plan):
                return records
            time.sleep(0.5)
    raise TimeoutError(f"not every server reached a final state within {timeout:.0f}s")


def _principal_of(estate: Estate, vault_id: str) -> str:
    vault = estate.arm.get(estate.arm.url_for(vault_id, "2026-06-01")).body
    return str(vault["identity"]["principalId"])


def report(plan: list[DemoServer], records: dict[str, ServerRecord]) -> tuple[Table, list[dict[str, Any]], bool]:
    table = Table(title="autoprotect demo report")
    for column in ("server", "scenario", "state", "reason", "created → protected"):
        table.add_column(column, overflow="fold")
    rows: list[dict[str, Any]] = []
    ok = True
    for item in plan:
        record = records[item.server_id.lower()]
        protected = parse_time(record.protected_at)
        elapsed = f"{protected.timestamp() - item.created_at:.1f}s" if protected and item.name != "legacy-db" else "-"
        as_expected = record.state.value == item.expect
        ok &= as_expected
        style = "green" if as_expected else "red"
        table.add_row(item.name, item.label, f"[{style}]{record.state.value}[/{style}]", record.reason, elapsed)
        rows.append({"server": item.server_id, "scenario": item.label, "state": record.state.value,
                     "expected": item.expect, "reason": record.reason, "timeToProtection": elapsed})  # fmt: skip
    return table, rows, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--keep-running", action="store_true", help="start the stack and wait (make run)")
    parser.add_argument("--profile", default="fast", help="emulator profile (see docs/EMULATOR.md)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)

    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)  # every run starts from an empty estate and fresh logs
    DEMO_DIR.mkdir()
    stack = LocalStack(DEMO_DIR, args.profile)
    try:
        banner, connection_string = stack.start()
        estate = Estate.connect(banner)
        vault, policy_id, team_vault, team_policy = build_estate(estate)
        settings = app_settings(banner, connection_string, vault["id"], policy_id)
        (DEMO_DIR / "app-settings.json").write_text(json.dumps(settings, indent=2))
        stack.start_devhost(settings)
        if args.keep_running:
            return keep_running(banner, settings, stack.devhost_port)
        from shared.runtime import storage_clients

        _, _, table_client = storage_clients(QUEUE, TABLE, settings)
        ledger = Ledger(table_client)
        plan = estate_plan()
        console.print("[bold]Creating the estate[/bold] (each write fires an Event Grid event at the dev host) ...")
        create_servers(estate, plan, vault, team_vault, team_policy)
        records = watch(ledger, plan, estate, args.timeout)
        table, rows, ok = report(plan, records)
        console.print(table)
        (DEMO_DIR / "report.json").write_text(json.dumps(rows, indent=2))
        instances = estate.instances(vault["id"])
        console.print(f"Backup instances in {vault['name']}: {len(instances)} (one per protected server)")
        console.print(
            f"Logs: {DEMO_DIR}/devhost.log, {DEMO_DIR}/emulator.log, {DEMO_DIR}/traffic.jsonl "
            f"(every ARM exchange); report: {DEMO_DIR}/report.json"
        )
        if not ok:
            console.print("[red]Some servers did not end as expected (see the report).[/red]")
            return 1
        console.print("[green]Every server reached its expected final state.[/green]")
        return 0
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; stopping everything.[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]Demo failed: {exc}[/red]")
        for child in stack.children:
            console.print(f"[dim]--- last lines of {child.log_path} ---[/dim]\n{child.log_tail(15)}")
        return 1
    finally:
        stack.stop()


def keep_running(banner: dict[str, Any], settings: dict[str, str], devhost_port: int) -> int:
    env_file = DEMO_DIR / "env.sh"
    env_file.write_text("".join(f"export {key}={shlex.quote(value)}\n" for key, value in settings.items()))
    console.print(
        f"\n[green]The local stack is running.[/green]\n"
        f"  ARM emulator : {banner['arm']} (trust {banner['ca_bundle']})\n"
        f"  Event Grid   : http://127.0.0.1:{devhost_port}/runtime/webhooks/EventGrid?functionName=on_resource_write\n"
        f"  app settings : {env_file}\n"
        f"Try: source {env_file.relative_to(REPO_ROOT)} && .venv/bin/python -m shared.cli status\n"
        f"Press Ctrl-C to stop.\n"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
