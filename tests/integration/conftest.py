"""The integration stack: Azurite, the emulator, an estate with a vault and policy, and the app's settings."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from scripts.demo import app_settings
from scripts.estate import Estate
from scripts.stack import Child
from shared import runtime

from .harness import Harness

REGION = "westeurope"


@dataclass
class Stack:
    banner: dict[str, Any]
    estate: Estate
    vault: dict[str, Any]
    vault_id: str
    policy_id: str
    other_vault_id: str
    other_policy_id: str
    harness: Harness
    env: dict[str, str]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"{self.banner['admin']}/{path}",
            json=body,
            headers={"X-Emulator-Admin": self.banner["identity_header"]},
            verify=self.banner["ca_bundle"],
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def new_group(self, *, grant: bool = True, location: str = REGION) -> str:
        """A fresh resource group; with `grant`, the vault's identity gets both backup roles on it."""
        name = f"rg-{uuid.uuid4().hex[:8]}"
        self.estate.resource_group(name, location)
        if grant:
            self.estate.grant_vault_roles(name, self.vault["identity"]["principalId"])
        return name

    def instances_for(self, server_id: str) -> list[dict[str, Any]]:
        found = []
        for vault in (self.vault_id, self.other_vault_id):
            for item in self.estate.instances(vault):
                source = item["properties"]["dataSourceInfo"]["resourceID"]
                if source.lower() == server_id.lower():
                    found.append(item)
        return found

    def configure(self, **overrides: str) -> None:
        """Apply app settings (as the Functions host would) and rebuild the process-wide service."""
        wanted = {**self.env, **overrides}
        for key in [k for k in os.environ if k.startswith("AUTOPROTECT_") and k not in wanted]:
            del os.environ[key]  # an earlier test's override must not leak into this one
        for key, value in wanted.items():
            os.environ[key] = value
        runtime.reset()


@pytest.fixture(scope="session")
def stack(azurite: Child, emulator: Child) -> Iterator[Stack]:
    banner = emulator.info
    estate = Estate.connect(banner)
    estate.resource_group("rg-backup", REGION)
    vault = estate.vault("rg-backup", "bv-weu", REGION)
    vault_id = vault["id"]
    policy_id = estate.policy(vault_id)
    other = estate.vault("rg-backup", "bv-other", REGION)
    other_policy = estate.policy(other["id"])
    env = app_settings(banner, azurite.info["connection_string"], vault_id, policy_id)
    env.update(
        {
            "AUTOPROTECT_JOBS_QUEUE": "jobs-integration",
            "AUTOPROTECT_LEDGER_TABLE": "ledgerintegration",
            "AUTOPROTECT_RETRY_SECONDS": "0.2",
            "AUTOPROTECT_WATCHDOG_MINUTES": "0.2",
            "AUTOPROTECT_POLL_SCHEDULE": "*/1 * * * * *",
            "AUTOPROTECT_PERMISSION_WAIT_MINUTES": "45",
        }
    )
    saved = {key: os.environ.get(key) for key in env}
    harness = Harness(azurite.info["connection_string"], env["AUTOPROTECT_JOBS_QUEUE"])
    result = Stack(banner, estate, vault, vault_id, policy_id, other["id"], other_policy, harness, env)
    result.configure()
    result.harness.service  # noqa: B018 - builds the service once, which creates the queues and the table
    try:
        yield result
    finally:
        runtime.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def clean_faults(stack: Stack) -> Iterator[Stack]:
    """Each test that injects faults or changes settings leaves the shared stack as it found it."""
    stack.admin("DELETE", "faults")
    try:
        yield stack
    finally:
        stack.admin("DELETE", "faults")
        stack.configure()


@dataclass
class Webhook:
    """A local receiver for notifications: its URL, and every JSON body it was posted."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def for_server(self, server_id: str) -> list[dict[str, Any]]:
        return [n for n in self.received if str(n.get("serverId", "")).lower() == server_id.lower()]


@pytest.fixture
def webhook(clean_faults: Stack) -> Iterator[Webhook]:
    """The stack configured to notify a local receiver (the settings are restored by `clean_faults`)."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    clean_faults.configure(AUTOPROTECT_NOTIFY_WEBHOOK_URL=hook.url)
    try:
        yield hook
    finally:
        server.shutdown()
