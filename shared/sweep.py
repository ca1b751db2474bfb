"""The reconcile sweep: find what events missed, and what broke after it was protected.

Event Grid delivery can fail for a day, servers exist from before autoprotect was deployed, people delete
backup instances, and tags change. Once an hour (setting `AUTOPROTECT_SWEEP_SCHEDULE`) the sweep lists every
flexible server in the subscriptions in scope and every instance in the configured vaults (paged: one ARM read
per page, not per server), compares them with the ledger, and hands each difference to the queue through the
same intake the events use. It only reads ARM; it never deletes a backup.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.backup import BackupApi
from shared.bodies import dig
from shared.config import Settings
from shared.ids import InvalidResourceId, ServerId
from shared.intake import Intake, utcnow
from shared.ledger import ConcurrentUpdate, Ledger, ServerRecord, State
from shared.messages import Source
from shared.rules import Route, RuleContext, ServerFacts, decide

logger = logging.getLogger("autoprotect.sweep")

BROKEN_PROTECTION = frozenset({"protectionstopped", "protectionerror", "configuringprotectionfailed", "softdeleted"})


@dataclass
class SweepSummary:
    servers: int = 0
    instances: int = 0
    actions: Counter[str] = field(default_factory=Counter)


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        api: BackupApi,
        ledger: Ledger,
        intake: Intake,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.api = api
        self.ledger = ledger
        self.intake = intake
        self._now = clock
        self._rules = RuleContext(settings, api.vault_location)

    def run(self) -> SweepSummary:
        summary = SweepSummary()
        instances = self._instances_by_datasource(summary)
        for subscription in self.api.subscriptions():
            self._sweep_subscription(subscription, instances, summary)
        logger.info("sweep: %d servers, %d instances; %s", summary.servers, summary.instances, dict(summary.actions))
        return summary

    def _instances_by_datasource(self, summary: SweepSummary) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        seen_vaults: set[str] = set()
        for target in self.settings.targets():
            if target.vault.key in seen_vaults:
                continue
            seen_vaults.add(target.vault.key)
            for instance in self.api.list_instances(target.vault):
                source = dig(instance, "properties", "dataSourceInfo", "resourceID")
                if isinstance(source, str):
                    found[source.lower()] = instance
                    summary.instances += 1
        return found

    def _sweep_subscription(
        self, subscription: str, instances: dict[str, dict[str, Any]], summary: SweepSummary
    ) -> None:
        records = {record.server_id.lower(): record for record in self.ledger.all(subscription)}
        listed: set[str] = set()
        for body in self.api.list_servers(subscription):
            try:
                server = ServerId.parse(body.get("id"))
            except InvalidResourceId as exc:
                summary.actions["invalid id skipped"] += 1
                logger.warning("sweep: ignoring a listed resource: %s", exc)
                continue
            summary.servers += 1
            listed.add(server.key)
            why = self._needs_work(server, body, records.get(server.key), instances.get(server.key))
            if why:
                outcome = self.intake.submit(server, source=Source.SWEEP, reason=why)
                summary.actions[why.split(":")[0]] += 1
                logger.info("sweep: %s: %s (%s)", server, why, outcome)
        for key, record in records.items():
            if key not in listed and record.state not in (State.GONE, State.UNPROTECTED):
                self._mark_gone(record)
                summary.actions["gone"] += 1

    def _needs_work(
        self, server: ServerId, body: dict[str, Any], record: ServerRecord | None, instance: dict[str, Any] | None
    ) -> str:
        """Why this server must be looked at again, or "" when the ledger and Azure agree."""
        if record is None:
            return "not in the ledger: missed event or pre-existing server"
        if record.state != State.PROTECTED:
            return ""
        if instance is None:
            return "backup instance missing: deleted since it was protected"
        status = str(dig(instance, "properties", "protectionStatus", "status") or "").lower()
        current = str(dig(instance, "properties", "currentProtectionState") or "").lower()
        if status in BROKEN_PROTECTION or current in BROKEN_PROTECTION:
            return f"protection broken: {current or status}"
        decision = decide(ServerFacts.from_arm(server, body), self._rules)
        if isinstance(decision, Route) and decision.target.policy.key != record.policy_id.lower():
            return f"policy changed: now {decision.target.policy.policy}"
        return ""

    def _mark_gone(self, record: ServerRecord) -> None:
        found = self.ledger.get(record.server)
        if found is None:
            return
        found.record.move(State.GONE, self._now(), reason="server no longer exists (found by the sweep)")
        try:
            self.ledger.replace(found.record, found.etag)
        except ConcurrentUpdate:
            logger.info("sweep: %s changed while being marked Gone; left for the next sweep", record.server_id)
