"""`make chaos`: a large estate under injected faults, host crashes and a storage restart; then count losses.

The emulator runs its `chaos` profile (429s, 5xx, connection resets, slow responses, failed operations) with a
share of events delivered twice; the dev host is killed with SIGKILL at random moments and restarted; Azurite
is restarted once with its data persisted. At the end the emulator's and the ledger's own state are compared:

- `eligible`: servers that should end protected (every server created here; none is opted out);
- `protected`: eligible servers the ledger says are Protected *and* that hold a backup instance;
- `lost`: eligible servers neither protected nor in an explained final state (a final state with an error);
- `duplicates`: servers with more than one backup instance;
- `poisoned`: messages in the poison queue, each with its reason.

The last line printed is one JSON object with those figures plus `faults_injected` and `restarts`.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from azure.storage.queue import QueueClient

from scripts.demo import QUEUE, TABLE, app_settings
from scripts.estate import OPERATOR_PRINCIPAL, AdminTokenCredential, Estate
from scripts.stack import (
    EVENT_FILTER,
    REPO_ROOT,
    AzuritePorts,
    Child,
    free_port,
    start_azurite,
    start_devhost,
    start_emulator,
    wait_until,
)
from shared.arm.client import ArmClient
from shared.ids import ServerId
from shared.ledger import FINAL_STATES, Ledger, State
from shared.runtime import storage_clients

CHAOS_DIR = REPO_ROOT / ".chaos"
REGION = "westeurope"


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class ChaosStack:
    """The local stack with fixed ports, so a restarted process comes back where its peers expect it."""

    def __init__(self, workdir: Path, seed: int) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)  # noqa: S311 - chaos timing, not security
        self.azurite_ports = AzuritePorts(free_port(), free_port(), free_port())
        self.devhost_port = free_port()
        self.azurite: Child | None = None
        self.emulator: Child | None = None
        self.devhost: Child | None = None
        self.settings: dict[str, str] = {}
        self.restarts: Counter[str] = Counter()

    def start_storage(self) -> None:
        self.azurite = start_azurite(self.workdir, data_dir=self.workdir / "azurite", ports=self.azurite_ports)

    def start_emulator(self) -> dict[str, Any]:
        webhook = f"http://127.0.0.1:{self.devhost_port}/runtime/webhooks/EventGrid?functionName=on_resource_write"
        config = self.workdir / "chaos-overrides.json"
        config.write_text(json.dumps({"events": {"duplicate_probability": 0.3}}))
        self.emulator = start_emulator(
            self.workdir,
            self.workdir / "emulator-data",
            profile="chaos",
            config=config,
            event_webhook=webhook,
            event_filter=EVENT_FILTER,
        )
        return self.emulator.info

    def start_host(self) -> None:
        self.devhost = start_devhost(self.workdir, self.settings, port=self.devhost_port)

    def kill_host(self) -> None:
        assert self.devhost is not None
        log(f"SIGKILL dev host (pid {self.devhost.process.pid})")
        self.devhost.kill()
        self.restarts["devhost"] += 1
        self.start_host()

    def restart_storage(self) -> None:
        assert self.azurite is not None
        log("restarting Azurite (data persisted)")
        self.azurite.stop()
        self.start_storage()
        self.restarts["azurite"] += 1

    def stop(self) -> None:
        for child in (self.devhost, self.emulator, self.azurite):
            if child is not None:
                child.stop()


def create_estate(banner: dict[str, Any], vault: dict[str, Any], servers: int, workers: int) -> list[str]:
    estate = Estate.connect(banner)
    groups = [f"rg-chaos-{i:02d}" for i in range(max(1, servers // 200))]
    for group in groups:
        estate.resource_group(group, REGION)
        estate.grant_vault_roles(group, vault["identity"]["principalId"])
    # Each operator principal has its own write bucket, as many people creating servers at once would.
    principals = [f"{OPERATOR_PRINCIPAL[:-4]}{i:04x}" for i in range(workers)]
    estates = [
        Estate(
            ArmClient(banner["arm"], AdminTokenCredential(banner, p), verify=banner["ca_bundle"]),
            estate.subscription_id,
        )
        for p in principals
    ]
    names = [(groups[i % len(groups)], f"chaos-{i:05d}") for i in range(servers)]

    def create(index: int) -> str:
        group, name = names[index]
        return estates[index % len(estates)].server(group, name, location=REGION)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(create, range(servers)))


def check(banner: dict[str, Any], stack: ChaosStack, server_ids: list[str]) -> dict[str, Any]:
    admin = {"X-Emulator-Admin": banner["identity_header"]}
    state = requests.get(f"{banner['admin']}/state", headers=admin, verify=banner["ca_bundle"], timeout=60).json()
    stats = requests.get(f"{banner['admin']}/stats", headers=admin, verify=banner["ca_bundle"], timeout=60).json()
    per_source: Counter[str] = Counter(
        inst["properties"]["dataSourceInfo"]["resourceID"].lower() for inst in state["instances"]
    )
    _, poison_client, table = storage_clients(QUEUE, TABLE, stack.settings)
    ledger = Ledger(table)
    protected = lost = 0
    lost_examples: list[dict[str, str]] = []
    states: Counter[str] = Counter()
    for server_id in server_ids:
        found = ledger.get(ServerId.parse(server_id))
        record = found.record if found else None
        states[record.state.value if record else "missing"] += 1
        if record and record.state == State.PROTECTED and per_source[server_id.lower()] >= 1:
            protected += 1
        elif record and record.state in FINAL_STATES and record.error_code:
            continue  # explained: a final state with Azure's error recorded
        else:
            lost += 1
            if len(lost_examples) < 5:
                lost_examples.append({"server": server_id, "state": record.state.value if record else "missing"})
    poisoned = _poisoned(poison_client)
    return {
        "eligible": len(server_ids),
        "protected": protected,
        "lost": lost,
        "duplicates": sum(1 for count in per_source.values() if count > 1),
        "poisoned": poisoned,
        "faults_injected": sum(stats.get("faults_injected", {}).values()),
        "faults_by_kind": stats.get("faults_injected", {}),
        "throttled_429": stats.get("throttled_429", 0),
        "events": stats.get("events", {}),
        "restarts": sum(stack.restarts.values()),
        "restarts_by_process": dict(stack.restarts),
        "final_states": dict(states),
        "lost_examples": lost_examples,
    }


def _poisoned(poison: QueueClient) -> list[dict[str, str]]:
    items: list[dict[str, str]] = []
    try:
        for message in poison.peek_messages(max_messages=32):
            text = base64.b64decode(message.content).decode("utf-8", "replace")
            try:
                reason = str(json.loads(text).get("reason", ""))
            except (ValueError, AttributeError):
                reason = "exhausted maxDequeueCount (host-poisoned; body kept as is)"
            items.append({"id": message.id, "reason": reason})
    except Exception:
        return []
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos")
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kills", type=int, default=2, help="dev host SIGKILLs (at least two)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args(argv)

    if CHAOS_DIR.exists():
        shutil.rmtree(CHAOS_DIR)
    CHAOS_DIR.mkdir()
    stack = ChaosStack(CHAOS_DIR, args.seed)
    try:
        stack.start_storage()
        banner = stack.start_emulator()
        probe = Estate.connect(banner)
        probe.resource_group("rg-backup", REGION)
        vault = probe.vault("rg-backup", "bv-chaos", REGION)
        policy = probe.policy(vault["id"])
        assert stack.azurite is not None
        stack.settings = app_settings(banner, stack.azurite.info["connection_string"], vault["id"], policy)
        stack.settings.update({"AUTOPROTECT_POLL_SCHEDULE": "*/1 * * * * *", "AUTOPROTECT_WATCHDOG_MINUTES": "0.5"})
        stack.start_host()
        log(f"creating {args.servers} servers through ARM")
        started = time.monotonic()
        disruptions = threading.Thread(target=_disrupt, args=(stack, args.kills), daemon=True)
        disruptions.start()
        server_ids = create_estate(banner, vault, args.servers, workers=16)
        log(f"created {len(server_ids)} servers in {time.monotonic() - started:.0f}s; waiting for final states")
        _, _, table = storage_clients(QUEUE, TABLE, stack.settings)
        deadline = time.monotonic() + args.timeout
        disruptions.join()
        _wait_final(Ledger(table), server_ids, deadline)
        result = check(banner, stack, server_ids)
        log(f"done in {time.monotonic() - started:.0f}s; logs in {CHAOS_DIR}")
        print(json.dumps(result))
        return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def _disrupt(stack: ChaosStack, kills: int) -> None:
    """Kill the host at random moments and restart storage once, while the estate is being protected."""
    plan = sorted(stack.rng.uniform(5, 40) for _ in range(max(kills, 2)))
    azurite_at = stack.rng.uniform(10, 35)
    began = time.monotonic()
    storage_done = False
    for at in plan:
        while time.monotonic() - began < at:
            if not storage_done and time.monotonic() - began >= azurite_at:
                stack.restart_storage()
                storage_done = True
            time.sleep(0.2)
        stack.kill_host()
    if not storage_done:
        wait_until(lambda: time.monotonic() - began >= azurite_at, timeout=60, what="the storage restart time")
        stack.restart_storage()


def _wait_final(ledger: Ledger, server_ids: list[str], deadline: float) -> None:
    pending = list(server_ids)
    while pending and time.monotonic() < deadline:
        still = []
        for server_id in pending:
            try:
                found = ledger.get(ServerId.parse(server_id))
            except Exception:
                still.append(server_id)
                continue
            if found is None or found.record.state not in FINAL_STATES:
                still.append(server_id)
        if len(still) != len(pending):
            log(f"{len(server_ids) - len(still)}/{len(server_ids)} final")
        pending = still
        if pending:
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
