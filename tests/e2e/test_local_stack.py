"""The whole local stack as `make demo` runs it: emulator events -> dev host -> real function_app -> Azure."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.demo import QUEUE, TABLE, LocalStack, app_settings
from scripts.estate import Estate
from scripts.stack import wait_until
from shared.ids import ServerId
from shared.ledger import Ledger, State
from shared.runtime import storage_clients

pytestmark = pytest.mark.integration


class Running:
    def __init__(self, stack: LocalStack, banner: dict[str, Any], settings: dict[str, str], estate: Estate) -> None:
        self.stack = stack
        self.banner = banner
        self.settings = settings
        self.estate = estate
        _, _, table = storage_clients(QUEUE, TABLE, settings)
        self.ledger = Ledger(table)
        self.webhook = (
            f"http://127.0.0.1:{stack.devhost_port}/runtime/webhooks/EventGrid?functionName=on_resource_write"
        )

    def state(self, server_id: str) -> State | None:
        found = self.ledger.get(ServerId.parse(server_id))
        return None if found is None else found.record.state


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir: Path = tmp_path_factory.mktemp("e2e")
    stack = LocalStack(workdir, "fast")
    try:
        banner, connection_string = stack.start()
        estate = Estate.connect(banner)
        estate.resource_group("rg-backup")
        vault = estate.vault("rg-backup", "bv-e2e")
        policy = estate.policy(vault["id"])
        settings = app_settings(banner, connection_string, vault["id"], policy)
        stack.start_devhost(settings)
        estate.resource_group("rg-e2e")
        estate.grant_vault_roles("rg-e2e", vault["identity"]["principalId"])
        yield Running(stack, banner, settings, estate)
    finally:
        stack.stop()


def test_a_server_created_through_arm_is_protected_by_the_running_app(running: Running):
    server = running.estate.server("rg-e2e", f"e2e-{uuid.uuid4().hex[:8]}")
    wait_until(lambda: running.state(server) == State.PROTECTED, timeout=90, what="the server to be protected")
    instances = [
        i for i in running.estate.instances(running.settings["AUTOPROTECT_DEFAULT_VAULT_ID"])
        if i["properties"]["dataSourceInfo"]["resourceID"].lower() == server.lower()
    ]  # fmt: skip
    assert len(instances) == 1


def test_the_emulator_delivers_what_the_deployed_filter_passes(running: Running):
    """Event Grid filtering from infra/eventgrid/filter.json: the app's own instance writes, the vault's
    validateForBackup actions and child writes reach the topic but are not delivered."""
    from tests.emulator.helpers import Arm

    server = running.estate.server("rg-e2e", f"flt-{uuid.uuid4().hex[:8]}")
    wait_until(lambda: running.state(server) == State.PROTECTED, timeout=90, what="the server to be protected")
    admin = Arm(running.banner)
    wait_until(lambda: admin.admin("GET", "stats").json()["events"]["pending"] == 0, timeout=30, what="deliveries")
    events = admin.admin("GET", "stats").json()["events"]
    assert events["filtered"] > 0
    # Every emitted event was either filtered out or delivered (the fast profile duplicates none).
    assert events["emitted"] == events["filtered"] + events["delivered"]
    recent = admin.admin("GET", "events", params={"limit": "5000"}).json()["recent"]
    wanted = {
        "microsoft.dbforpostgresql/flexibleservers/write",
        "microsoft.dbforpostgresql/flexibleservers/start/action",
    }
    passing = [e for e in recent if e["data"]["operationName"].lower() in wanted]
    assert len(passing) == events["delivered"]


def test_webhook_handshake_and_hand_made_events(running: Running):
    validation = [{
        "id": str(uuid.uuid4()), "topic": "/subscriptions/x", "subject": "", "data": {"validationCode": "c0de"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-11-26T00:00:00Z",
        "dataVersion": "1", "metadataVersion": "1",
    }]  # fmt: skip
    answer = requests.post(
        running.webhook, json=validation, headers={"aeg-event-type": "SubscriptionValidation"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "c0de"}

    server = running.estate.server("rg-e2e", f"hand-{uuid.uuid4().hex[:8]}", wait=True)
    subscription = server.split("/")[2]
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()), "topic": f"/subscriptions/{subscription}", "subject": server,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess", "eventTime": "2026-11-26T00:00:00Z",
        "data": {"operationName": "Microsoft.DBforPostgreSQL/flexibleServers/write", "resourceUri": server,
                 "status": "Succeeded", "subscriptionId": subscription},
        "dataVersion": "", "metadataVersion": "1",
    }  # fmt: skip
    noise = {**event, "id": str(uuid.uuid4()), "subject": server + "/firewallRules/all",
             "data": {**event["data"], "operationName": "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write",
                      "resourceUri": server + "/firewallRules/all"}}  # fmt: skip
    delivered = requests.post(
        running.webhook, data=json.dumps([event, noise, event]), headers={"aeg-event-type": "Notification"}, timeout=30
    )
    assert delivered.status_code == 200
    wait_until(lambda: running.state(server) is not None, timeout=30, what="the job to be recorded")
    wait_until(lambda: running.state(server) == State.PROTECTED, timeout=90, what="protection")


def test_cloud_events_handshake(running: Running):
    answer = requests.options(running.webhook, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
