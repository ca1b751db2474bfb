"""`make bench`: protect N servers created at once on the local stack and compare with the least makespan.

    python -m scripts.bench [--servers N] [--sweep] [--naive-subset K] [--out .bench/] [--clock-scale S]

Starts Azurite, the emulator (profile `bench`, clock scale overridden by `--clock-scale` through `--config`) and
the dev host running the real function_app (`scripts.demo.LocalStack` / `app_settings`); creates a vault and
policy, grants the vault's roles at resource-group scope, then creates N servers at once through ARM, spread over
several operator principals in parallel threads (each principal has its own write bucket, so creating the estate
is not the bottleneck). It waits until every server is final and reports makespan against the lower bound
(`scripts/bench_model.py`), ARM requests per server from the emulator's stats for the app's principal only,
function-seconds per server from the dev host's own accounting, latency percentiles, a naive sequential baseline
run in the same stack, cold-start import times and the dev host's peak memory. Outputs go to `--out`: per-N
logs, `bench.png` and `bench.json`; the last line printed is the JSON of every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from rich.console import Console
from rich.table import Table

from scripts import bench_model as model
from scripts.demo import LocalStack, app_settings
from scripts.estate import DP_API, AdminTokenCredential, Estate
from scripts.stack import EVENT_FILTER, REPO_ROOT, Child, start_azurite, start_emulator
from shared.arm.client import ArmClient, ArmResponse
from shared.arm.lro import polling_target
from shared.ledger import FINAL_STATES, Ledger, ServerRecord, State, parse_time

if TYPE_CHECKING:
    from azure.data.tables import TableClient

console = Console(stderr=True)

# The default clock scale: the 1000-server lower bound of the `bench` profile's parameters is 660 service
# seconds (servers Ready after 300 s, 2000 writes at 10/s minus the 200 burst, then create 60 s + configure 120 s),
# so 0.09 makes it ~59 s of wall time. See docs/PERFORMANCE.md.
DEFAULT_CLOCK_SCALE = 0.09
SWEEP_SIZES = (100, 1000, 5000)
REGION = "westeurope"
SERVER_GROUP, NAIVE_GROUP, BACKUP_GROUP = "rg-bench", "rg-naive", "rg-backup"
NAIVE_PRINCIPAL = "0a0a0a0a-0000-4000-8000-00000000a1fe"
SERVERS_PER_OPERATOR = 150  # below the operators' 200-write burst, so creating the estate is never throttled
COLD_START_RUNS = 7


# -- the stack --------------------------------------------------------------------------------------------------


class BenchStack(LocalStack):
    """`LocalStack` with the clock-scale override file and the traffic log off unless asked for."""

    def __init__(self, workdir: Path, profile: str, config: Path, traffic: bool) -> None:
        super().__init__(workdir, profile)
        self.config = config
        self.traffic = traffic

    def start(self) -> tuple[dict[str, Any], str]:
        azurite = start_azurite(self.workdir, data_dir=None)
        self.children.append(azurite)
        webhook = f"http://127.0.0.1:{self.devhost_port}/runtime/webhooks/EventGrid?functionName=on_resource_write"
        emulator = start_emulator(
            self.workdir,
            self.workdir / "emulator-data",
            profile=self.profile,
            config=self.config,
            traffic_log=self.workdir / "traffic.jsonl" if self.traffic else None,
            event_webhook=webhook,
            event_filter=EVENT_FILTER,
        )
        self.children.append(emulator)
        return emulator.info, str(azurite.info["connection_string"])

    def devhost(self) -> Child | None:
        return next((c for c in self.children if c.name == "devhost"), None)


class Admin:
    """The emulator's admin API and the dev host's admin endpoints."""

    def __init__(self, banner: dict[str, Any], devhost_url: str = "") -> None:
        self.base = str(banner["admin"])
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(banner["ca_bundle"])
        self.session.headers["X-Emulator-Admin"] = str(banner["identity_header"])
        self.devhost_url = devhost_url

    def get(self, path: str) -> Any:
        response = self.session.get(f"{self.base}/{path}", timeout=60)
        response.raise_for_status()
        return response.json()

    def invocations(self) -> dict[str, Any]:
        response = requests.get(f"{self.devhost_url}/admin/invocations", timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def operator_estate(banner: dict[str, Any], subscription: str, principal: str) -> Estate:
    credential = AdminTokenCredential(banner, principal)
    return Estate(ArmClient(banner["arm"], credential, verify=banner["ca_bundle"]), subscription)


def bench_settings(
    args: argparse.Namespace, banner: dict[str, Any], connection: str, vault: str, policy: str
) -> dict[str, str]:
    settings = app_settings(banner, connection, vault, policy)
    settings.update(
        {
            "AUTOPROTECT_POLL_SCHEDULE": args.poll_schedule,
            "AUTOPROTECT_RETRY_SECONDS": f"{args.retry_seconds:g}",
            "AUTOPROTECT_POLL_CONCURRENCY": str(args.poll_concurrency),
            "AUTOPROTECT_WATCHDOG_MINUTES": "10",
            "AUTOPROTECT_PERMISSION_WAIT_MINUTES": "10",
            # The reconcile sweep is a safety net (hourly in production); keep it out of the measured window.
            "AUTOPROTECT_SWEEP_SCHEDULE": "0 0 0 1 1 *",
        }
    )
    return settings


# -- one run ----------------------------------------------------------------------------------------------------


@dataclass
class Created:
    server_id: str
    sent_at: float
    accepted_at: float


@dataclass
class RunResult:
    n: int
    figures: dict[str, Any]
    finish_offsets: list[float] = field(default_factory=list)
    ideal_offsets: list[float] = field(default_factory=list)


def create_servers(
    banner: dict[str, Any],
    subscription: str,
    n: int,
    threads: int,
    group: str,
    *,
    prefix: str,
    tags: dict[str, str],
    per_operator: int = SERVERS_PER_OPERATOR,
) -> list[Created]:
    """Create `n` servers at once, spread over several operator principals (one write bucket each)."""
    operators = max(1, math.ceil(n / max(per_operator, 1)))
    estates = [operator_estate(banner, subscription, str(uuid.UUID(int=0xA11CE0000 + i))) for i in range(operators)]
    for estate in estates:  # fetch each principal's token before the clock starts
        estate.arm._bearer()  # warm the token cache (no public API for it)

    def one(i: int) -> Created:
        sent = time.time()
        server_id = estates[i % operators].server(group, f"{prefix}{i:05d}", location=REGION, tags=tags)
        return Created(server_id, sent, time.time())

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="create") as pool:
        return list(pool.map(one, range(n)))


def watch(
    ledger: Ledger, table: TableClient, subscription: str, ids: set[str], timeout: float, started: float
) -> dict[str, ServerRecord]:
    """Wait until every server in `ids` has a final record; progress on stderr every ~5 s.

    While waiting it reads only two columns every 3 s (the observer should cost the 2-core box little); the full
    records are read once at the end.
    """
    deadline = time.monotonic() + timeout
    last_print = 0.0
    finals = {state.value for state in FINAL_STATES}
    while True:
        states = {k: v for k, v in state_columns(table, subscription).items() if k in ids}
        final = sum(1 for state in states.values() if state in finals)
        if time.monotonic() - last_print > 5 or final == len(ids):
            console.print(
                f"  {time.time() - started:6.1f}s  final {final}/{len(ids)}  {dict(Counter(states.values()))}"
            )
            last_print = time.monotonic()
        if final == len(ids):
            return {r.server_id.lower(): r for r in ledger_records(ledger, subscription) if r.server_id.lower() in ids}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ids) - final} of {len(ids)} servers not final after {timeout:.0f}s")
        time.sleep(3.0)


def state_columns(table: TableClient, subscription: str) -> dict[str, str]:
    """Lower-cased server id -> State, reading only ServerId and State from the ledger table."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        rows = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": subscription.lower()}, select=["ServerId", "State"]
        )
        return {str(row.get("ServerId", "")).lower(): str(row.get("State", "")) for row in rows}
    except ResourceNotFoundError:
        return {}


def naive_baseline(arm: ArmClient, servers: list[str], vault_id: str, policy_id: str) -> dict[str, Any]:
    """What the REST documentation describes, one server after the other (as `az dataprotection
    backup-instance create` does): validate, poll until done, PUT the instance, poll until done."""
    from shared.backup import backup_instance
    from shared.config import VaultTarget
    from shared.ids import ServerId, VaultChildId
    from shared.rules import ServerFacts

    target = VaultTarget(VaultChildId.parse_vault(vault_id), VaultChildId.parse_policy(policy_id))
    per_server: list[float] = []
    failures: list[str] = []
    started = time.time()
    for server_id in servers:
        begin = time.time()
        server = ServerId.parse(server_id)
        body = backup_instance(ServerFacts(server, REGION, "Ready", "Primary"), target)
        validate = arm.post(arm.url_for(f"{vault_id}/validateForBackup", DP_API), {"backupInstance": body})
        ok = _follow(arm, validate)
        if ok:
            put = arm.put(
                arm.url_for(f"{vault_id}/backupInstances/{server.backup_instance_name()}", DP_API),
                {"properties": body},
            )
            ok = _follow(arm, put)
        if not ok:
            failures.append(server_id)
        per_server.append(time.time() - begin)
    elapsed = time.time() - started
    return {
        "servers": len(servers),
        "elapsed_s": round(elapsed, 3),
        "seconds_per_server": round(elapsed / max(len(servers), 1), 3),
        "throughput_per_s": round(len(servers) / elapsed, 4) if elapsed else 0.0,
        "failures": len(failures),
        "per_server_s": [round(s, 3) for s in per_server],
    }


def _follow(arm: ArmClient, response: ArmResponse, timeout: float = 600) -> bool:
    """Poll an async operation to its end, sleeping Retry-After between polls (the SDK's LRO poller does)."""
    if response.status >= 400:
        return False
    target = polling_target(response.headers)
    if target is None:
        return True
    wait = target.retry_after_s
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(max(wait, 0.0))
        status = arm.get(target.url)
        body = status.body if isinstance(status.body, dict) else {}
        state = str(body.get("status", "")).lower()
        if status.status == 200 and state in ("succeeded", "failed", "canceled"):
            return state == "succeeded"
        if status.status >= 400:
            return False
        wait = float(status.headers.get("Retry-After", target.retry_after_s) or 1)
    return False


def instance_counts(state: dict[str, Any], vault_id: str) -> Counter[str]:
    """Backup instances in our vault per protected server (lower-cased id): any value above 1 is a duplicate."""
    counts: Counter[str] = Counter()
    for instance in state.get("instances", []):
        if not str(instance.get("id", "")).lower().startswith(vault_id.lower() + "/"):
            continue
        datasource = (instance.get("properties") or {}).get("dataSourceInfo") or {}
        counts[str(datasource.get("resourceID", "")).lower()] += 1
    return counts


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_cpu(stack: BenchStack) -> dict[str, float]:
    return {child.name: cpu_seconds(child.process.pid) for child in stack.children if child.alive()}


def poison_count(settings: dict[str, str]) -> int:
    from shared.runtime import storage_clients

    _, poison, _ = storage_clients(settings["AUTOPROTECT_JOBS_QUEUE"], settings["AUTOPROTECT_LEDGER_TABLE"], settings)
    try:
        return int(poison.get_queue_properties().approximate_message_count or 0)
    except Exception:  # the poison queue is created on first use only
        return 0


def run_once(n: int, args: argparse.Namespace, naive_k: int) -> RunResult:
    workdir = Path(args.out) / f"n{n}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config_path = workdir / "emulator-config.json"
    overrides = json.loads(args.emulator_config) if args.emulator_config else {}
    config_path.write_text(json.dumps({**overrides, "clock_scale": args.clock_scale}))
    stack = BenchStack(workdir, args.profile, config_path, args.traffic)
    try:
        banner, connection = stack.start()
        admin = Admin(banner)
        config = admin.get("config")
        params = model.Params.from_config(config)
        subscription = str(banner["subscription_ids"][0])
        app_principal = str(banner["app_principal_id"])
        console.print(
            f"[bold]N={n}[/bold]: clock scale {params.clock_scale}, writes {params.writes_burst:g} burst + "
            f"{params.write_rate:.1f}/s real, chain {params.chain_s:.1f}s, "
            f"lower bound (all created at once) {model.lower_bound(n, params):.1f}s"
        )
        estate = operator_estate(banner, subscription, "0a0a0a0a-0000-4000-8000-0000000a11ce")
        estate.resource_group(BACKUP_GROUP, REGION)
        vault = estate.vault(BACKUP_GROUP, "bv-bench", REGION)
        policy_id = estate.policy(vault["id"])
        for group in (SERVER_GROUP, NAIVE_GROUP):
            estate.resource_group(group, REGION)
            estate.grant_vault_roles(group, vault["identity"]["principalId"])
        # The naive baseline's servers: opted out of autoprotect by tag, so only the naive script protects them.
        naive_ids = [c.server_id for c in create_servers(
            banner, subscription, naive_k, 4, NAIVE_GROUP, prefix="naive-", tags={"autoprotect": "off"})]  # fmt: skip
        settings = bench_settings(args, banner, connection, vault["id"], policy_id)
        (workdir / "app-settings.json").write_text(json.dumps(settings, indent=2))
        devhost = stack.start_devhost(settings)
        admin.devhost_url = str(devhost.info["url"])
        from shared.runtime import storage_clients

        table = storage_clients(settings["AUTOPROTECT_JOBS_QUEUE"], settings["AUTOPROTECT_LEDGER_TABLE"], settings)[2]
        ledger = Ledger(table)
        wait_for_naive_ledger(ledger, subscription, naive_ids)
        stats_before = admin.get("stats")
        invocations_before = admin.invocations()
        cpu_before, cpu_started = stack_cpu(stack), time.time()

        console.print(f"Creating {n} servers at once ({args.threads} threads) ...")
        # Each operator stays within 3/4 of its own write burst, so creating the estate is never throttled.
        per_operator = min(SERVERS_PER_OPERATOR, int(params.writes_burst * 0.75))
        created = create_servers(
            banner, subscription, n, args.threads, SERVER_GROUP, prefix="pg-", tags={}, per_operator=per_operator
        )
        t0 = min(c.accepted_at for c in created)
        spread = max(c.accepted_at for c in created) - t0
        console.print(f"  created in {spread:.2f}s; waiting for every server to be final ...")
        bound = model.lower_bound(n, params, spread)
        ids = {c.server_id.lower() for c in created}
        records = watch(ledger, table, subscription, ids, args.timeout or 10 * bound + 180, t0)
        stats_after = admin.get("stats")
        invocations_after = admin.invocations()
        cpu_after, cpu_window = stack_cpu(stack), time.time() - cpu_started
        state = admin.get("state")
        poison = poison_count(settings)

        naive: dict[str, Any] = {}
        if naive_k:
            console.print(f"Naive baseline: {naive_k} servers, one after the other ...")
            naive_arm = ArmClient(banner["arm"], AdminTokenCredential(banner, NAIVE_PRINCIPAL),
                                  verify=banner["ca_bundle"])  # fmt: skip
            naive = naive_baseline(naive_arm, naive_ids, vault["id"], policy_id)
            naive_requests = admin.get("stats")["requests_by_principal"].get(NAIVE_PRINCIPAL, {})
            naive["requests_per_server"] = model.per_server(naive_requests, naive_k)
        figures = summarise(
            n=n, params=params, created=created, records=records, bound=bound, spread=spread, app=app_principal,
            stats=(stats_before, stats_after), invocations=(invocations_before, invocations_after),
            state=state, vault_id=vault["id"], poison=poison, naive=naive,
        )  # fmt: skip
        # CPU seconds of each process while the servers were being protected, and the mean cores that used.
        figures["cpu_seconds"] = {k: round(v - cpu_before.get(k, 0.0), 1) for k, v in cpu_after.items()}
        figures["cpu_utilisation"] = {k: round(v / cpu_window, 2) for k, v in figures["cpu_seconds"].items()}
        figures["app_settings"] = {k: v for k, v in settings.items() if k.startswith("AUTOPROTECT_")}
        finish = [
            protected.timestamp() - t0
            for r in records.values()
            if (protected := parse_time(r.protected_at)) is not None
        ]
        result = RunResult(n, figures, finish, model.ideal_finish_times(n, params))
        (workdir / "figures.json").write_text(json.dumps(figures, indent=2))
        return result
    except Exception:
        for child in stack.children:
            console.print(f"[dim]--- last lines of {child.log_path} ---[/dim]\n{child.log_tail(15)}")
        raise
    finally:
        stack.stop()


def ledger_records(ledger: Ledger, subscription: str) -> list[ServerRecord]:
    """Every server record of the subscription; none while the app has not created its table yet."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return list(ledger.all(subscription))
    except ResourceNotFoundError:
        return []


def wait_for_naive_ledger(ledger: Ledger, subscription: str, naive_ids: list[str], timeout: float = 120) -> None:
    """Let the app skip the opted-out naive servers before the measured window opens."""
    wanted = {i.lower() for i in naive_ids}
    deadline = time.monotonic() + timeout
    while wanted and time.monotonic() < deadline:
        done = {r.server_id.lower() for r in ledger_records(ledger, subscription) if r.state in FINAL_STATES}
        if wanted <= done:
            return
        time.sleep(0.5)


PHASES = ("Queued", "WaitingForServer", "Validating", "Validated", "Creating", "Configuring", "Protected")


def phase_offsets(records: dict[str, ServerRecord], created: dict[str, Created]) -> dict[str, dict[str, float]]:
    """p50/p95 of the time from a server's creation to when it (last) entered each state, from the ledger."""
    offsets: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for key, record in records.items():
        for phase in PHASES:
            entered = parse_time(record.transitions.get(phase, ""))
            if entered is not None and key in created:
                offsets[phase].append(entered.timestamp() - created[key].accepted_at)
    return {
        phase: {"p50": round(model.percentile(v, 50), 2), "p95": round(model.percentile(v, 95), 2), "n": len(v)}
        for phase, v in offsets.items()
        if v
    }


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    return {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in after}


def summarise(
    *,
    n: int,
    params: model.Params,
    created: list[Created],
    records: dict[str, ServerRecord],
    bound: float,
    spread: float,
    app: str,
    stats: tuple[dict[str, Any], dict[str, Any]],
    invocations: tuple[dict[str, Any], dict[str, Any]],
    state: dict[str, Any],
    vault_id: str,
    poison: int,
    naive: dict[str, Any],
) -> dict[str, Any]:
    before, after = stats
    t0 = min(c.accepted_at for c in created)
    by_id = {c.server_id.lower(): c for c in created}
    states = Counter(r.state.value for r in records.values())
    latencies: list[float] = []
    last = t0
    for key, record in records.items():
        protected = parse_time(record.protected_at)
        if record.state == State.PROTECTED and protected is not None:
            latencies.append(protected.timestamp() - by_id[key].accepted_at)
            last = max(last, protected.timestamp())
    protected_n = states.get(State.PROTECTED.value, 0)
    makespan = last - t0
    app_requests = _delta(after["requests_by_principal"].get(app, {}), before["requests_by_principal"].get(app, {}))
    per_server = model.per_server(app_requests, protected_n)
    fn_before, fn_after = invocations[0]["functions"], invocations[1]["functions"]
    functions = {
        name: {
            "count": fn_after[name]["count"] - fn_before.get(name, {}).get("count", 0),
            "failures": fn_after[name]["failures"] - fn_before.get(name, {}).get("failures", 0),
            "seconds": round(fn_after[name]["total_seconds"] - fn_before.get(name, {}).get("total_seconds", 0.0), 3),
        }
        for name in fn_after
    }
    function_seconds = sum(f["seconds"] for f in functions.values())
    counts = instance_counts(state, vault_id)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    figures: dict[str, Any] = {
        "servers": n,
        "protected": protected_n,
        "final_states": dict(states),
        "clock_scale": params.clock_scale,
        "creation_spread_s": round(spread, 3),
        "makespan_s": round(makespan, 3),
        "lower_bound_s": round(bound, 3),
        "ratio_to_limit": round(makespan / bound, 4) if bound else math.nan,
        "throughput_per_s": round(protected_n / makespan, 3) if makespan > 0 else 0.0,
        "requests_per_server": per_server,
        "min_requests_per_server": dict(model.MIN_REQUESTS_PER_SERVER),
        "requests_vs_minimum": round(model.excess_over_minimum(per_server), 4) if per_server else math.nan,
        "app_requests": app_requests,
        # Token requests over the whole life of the dev host process (its first token is fetched before the window).
        "token_requests": int(after["requests_by_principal"].get(app, {}).get("token", 0)),
        "throttled_429": int(after["throttled_429"]) - int(before["throttled_429"]),
        "throttled_by_kind": _delta(after.get("throttled_by_kind", {}), before.get("throttled_by_kind", {})),
        "function_seconds_per_server": round(function_seconds / protected_n, 5) if protected_n else math.nan,
        "function_seconds_total": round(function_seconds, 3),
        "functions": functions,
        "latency_p50_s": round(model.percentile(latencies, 50), 3),
        "latency_p95_s": round(model.percentile(latencies, 95), 3),
        "latency_max_s": round(max(latencies), 3) if latencies else math.nan,
        "phase_offsets_s": phase_offsets(records, by_id),
        "peak_rss_bytes": int(invocations[1].get("peak_rss_bytes", 0)),
        "backup_instances": sum(counts.values()),
        "duplicate_instances": duplicates,
        "lost": n - protected_n,
        "poison_messages": poison,
        "events": after.get("events", {}),
        "emulator_params": params.as_dict(),
    }
    if naive:
        naive_fs = float(naive["seconds_per_server"])
        figures["naive"] = naive
        figures["speedup_vs_naive"] = round(figures["throughput_per_s"] / naive["throughput_per_s"], 2)
        figures["cost_ratio_vs_naive"] = (
            round(figures["function_seconds_per_server"] / naive_fs, 5) if naive_fs else math.nan
        )
        # The naive script's seconds are almost all waiting, which the clock scale shrinks; the app's are work,
        # which it does not. At Azure's own latencies the naive script would take naive_fs / scale per server.
        figures["cost_ratio_vs_naive_at_real_latencies"] = (
            round(figures["function_seconds_per_server"] * params.clock_scale / naive_fs, 5) if naive_fs else math.nan
        )
    return figures


# -- cold start -------------------------------------------------------------------------------------------------


def cold_start(runs: int = COLD_START_RUNS) -> dict[str, Any]:
    """Import times in fresh interpreters, median of `runs`: `function_app` alone, a bare `azure.functions` alone,
    and what `function_app` adds once `azure.functions` is loaded (measured in the same interpreter, which is
    far less noisy than the difference of two medians on a busy machine)."""
    alone = "import time; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"
    added = (
        "import time; t=time.perf_counter(); import azure.functions; u=time.perf_counter(); import function_app; "
        "print(time.perf_counter()-u)"
    )
    samples: dict[str, list[float]] = {"function_app": [], "azure.functions": [], "added": []}
    for _ in range(runs):
        for key in samples:  # interleaved, so drift on the machine hits all three alike
            code = added if key == "added" else alone.format(m=key)
            out = subprocess.run(  # noqa: S603 - fixed argv
                [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
            )
            samples[key].append(float(out.stdout.strip().splitlines()[-1]))
    return {
        "runs": runs,
        "function_app_s": round(statistics.median(samples["function_app"]), 4),
        "azure_functions_s": round(statistics.median(samples["azure.functions"]), 4),
        "added_s": round(statistics.median(samples["added"]), 4),
    }


# -- output -----------------------------------------------------------------------------------------------------


def plot(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        times, done = model.step_curve(result.finish_offsets)
        ax.step(times, done, where="post", label="protected (measured)", color="tab:blue")
        ideal_t, ideal_n = model.step_curve(result.ideal_offsets)
        ax.step(ideal_t, ideal_n, where="post", label="best schedule the emulator allows", color="tab:green",
                linestyle="--")  # fmt: skip
        bound = result.figures["lower_bound_s"]
        ax.axvline(bound, color="tab:red", linestyle=":", label=f"lower bound {bound:.0f}s")
        ax.set_title(
            f"N={result.n}: makespan {result.figures['makespan_s']:.0f}s, ratio {result.figures['ratio_to_limit']:.2f}"
        )
        ax.set_xlabel("seconds since the first server was created")
        ax.set_ylabel("servers protected")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: list[RunResult], cold: dict[str, Any]) -> Table:
    out = Table(title="autoprotect benchmark")
    out.add_column("figure")
    for result in results:
        out.add_column(f"N={result.n}", justify="right")

    def row(label: str, render: Any) -> None:
        out.add_row(label, *(render(r.figures) for r in results))

    row("protected / final", lambda f: f"{f['protected']} / {sum(f['final_states'].values())}")
    row("makespan_s", lambda f: f"{f['makespan_s']:.1f}")
    row("lower_bound_s", lambda f: f"{f['lower_bound_s']:.1f}")
    row("ratio_to_limit", lambda f: f"{f['ratio_to_limit']:.3f}")
    row("latency p50 / p95 s", lambda f: f"{f['latency_p50_s']:.1f} / {f['latency_p95_s']:.1f}")
    row("ARM reads / server (min 3)", lambda f: f"{f['requests_per_server'].get('read', 0):.2f}")
    row("ARM writes / server (min 2)", lambda f: f"{f['requests_per_server'].get('write', 0):.2f}")
    row("status polls / server (min 2)", lambda f: f"{f['requests_per_server'].get('poll', 0):.2f}")
    row("ARM total vs minimum", lambda f: f"{f['requests_vs_minimum']:.2f}x")
    row("token requests", lambda f: str(f["token_requests"]))
    row("429s", lambda f: str(f["throttled_429"]))
    row("function-s / server", lambda f: f"{f['function_seconds_per_server']:.4f}")
    row(
        "dup. instances / lost / poison", lambda f: f"{f['duplicate_instances']} / {f['lost']} / {f['poison_messages']}"
    )
    row("naive s / server (K)", lambda f: f"{f['naive']['seconds_per_server']:.1f} ({f['naive']['servers']})"
        if "naive" in f else "-")  # fmt: skip
    row("speedup_vs_naive", lambda f: f"{f['speedup_vs_naive']:.1f}x" if "speedup_vs_naive" in f else "-")
    row("cost_ratio_vs_naive", lambda f: f"{f['cost_ratio_vs_naive']:.2%}" if "cost_ratio_vs_naive" in f else "-")
    row("cost at real latencies", lambda f: f"{f['cost_ratio_vs_naive_at_real_latencies']:.2%}"
        if "cost_ratio_vs_naive_at_real_latencies" in f else "-")  # fmt: skip
    row("CPU cores used (mean)", lambda f: " ".join(f"{k[:3]} {v:.2f}" for k, v in f["cpu_utilisation"].items()))
    row("dev host peak RSS MiB", lambda f: f"{f['peak_rss_bytes'] / 2**20:.0f}")
    out.caption = (
        f"cold start: import function_app {cold['function_app_s'] * 1000:.0f} ms vs azure.functions "
        f"{cold['azure_functions_s'] * 1000:.0f} ms (+{cold['added_s'] * 1000:.0f} ms, median of {cold['runs']})"
    )
    return out


def combine(results: list[RunResult], cold: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The final JSON: the figures of the main (largest-N unless one run) run at top level, every run listed."""
    main = results[-1].figures if len(results) == 1 else max(results, key=lambda r: r.n).figures
    out: dict[str, Any] = {k: v for k, v in main.items() if k not in ("naive", "app_settings", "emulator_params")}
    naive = next((r.figures["naive"] for r in results if "naive" in r.figures), None)
    if naive is not None:
        naive_light = {k: v for k, v in naive.items() if k != "per_server_s"}
        out["naive"] = naive_light
        out["speedup_vs_naive"] = round(main["throughput_per_s"] / naive["throughput_per_s"], 2)
        out["cost_ratio_vs_naive"] = round(main["function_seconds_per_server"] / naive["seconds_per_server"], 5)
        out["cost_ratio_vs_naive_at_real_latencies"] = round(
            main["function_seconds_per_server"] * main["clock_scale"] / naive["seconds_per_server"], 5
        )
    out["cold_start"] = cold
    out["command"] = " ".join(["python -m scripts.bench", *sys.argv[1:]])
    out["app_settings"] = main.get("app_settings", {})
    out["emulator_params"] = main.get("emulator_params", {})
    if len(results) > 1:
        out["sweep"] = [
            {k: r.figures[k] for k in ("servers", "makespan_s", "lower_bound_s", "ratio_to_limit",
                                        "function_seconds_per_server", "requests_vs_minimum", "peak_rss_bytes")}
            for r in results
        ]  # fmt: skip
        out["growth_exponent_makespan"] = round(
            model.growth_exponent([(r.n, r.figures["makespan_s"]) for r in results]), 3
        )
        out["growth_exponent_function_seconds"] = round(
            model.growth_exponent([(r.n, r.figures["function_seconds_total"]) for r in results]), 3
        )
    out["finished_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000, help="servers created at once (default 1000)")
    parser.add_argument("--sweep", action="store_true", help=f"run N = {', '.join(map(str, SWEEP_SIZES))}")
    parser.add_argument("--naive-subset", type=int, default=5, help="servers for the naive baseline (0 = skip)")
    parser.add_argument("--out", default=str(REPO_ROOT / ".bench"), help="output folder (default .bench/)")
    parser.add_argument("--profile", default="bench", help="emulator profile (default bench)")
    parser.add_argument(
        "--clock-scale",
        type=float,
        default=DEFAULT_CLOCK_SCALE,
        help=f"emulator clock scale (default {DEFAULT_CLOCK_SCALE}: the 1000-server bound is ~1 min)",
    )
    parser.add_argument(
        "--emulator-config",
        default="",
        help='JSON merged over the profile, e.g. \'{"throttle": {"writes_per_s": 1}}\' to make the app hit 429s',
    )
    parser.add_argument("--threads", type=int, default=16, help="threads creating servers (default 16)")
    parser.add_argument("--poll-schedule", default="* * * * * *", help="AUTOPROTECT_POLL_SCHEDULE (default 1 s)")
    parser.add_argument("--retry-seconds", type=float, default=1.0, help="AUTOPROTECT_RETRY_SECONDS (default 1)")
    parser.add_argument("--poll-concurrency", type=int, default=16, help="AUTOPROTECT_POLL_CONCURRENCY (default 16)")
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds to wait (default 10x bound + 180)")
    parser.add_argument("--traffic", action="store_true", help="write the emulator's traffic log (big)")
    parser.add_argument("--cold-start-runs", type=int, default=COLD_START_RUNS)
    args = parser.parse_args(argv)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = list(SWEEP_SIZES) if args.sweep else [args.servers]
    console.print(
        f"Cold start: importing function_app and azure.functions in {args.cold_start_runs} fresh interpreters"
    )
    cold = cold_start(args.cold_start_runs)
    results: list[RunResult] = []
    try:
        for i, n in enumerate(sizes):
            results.append(run_once(n, args, args.naive_subset if i == 0 else 0))
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; everything started was stopped.[/yellow]")
        return 130
    plot(results, out_dir / "bench.png")
    summary = combine(results, cold, args)
    (out_dir / "bench.json").write_text(json.dumps(summary, indent=2))
    Console().print(table(results, cold))
    console.print(f"Plot: {out_dir / 'bench.png'}; figures: {out_dir / 'bench.json'}; logs: {out_dir}/n*/")
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if all(r.figures["lost"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
