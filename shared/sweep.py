"""The reconcile sweep: find what events missed, and what broke after it was protected.

Event Grid delivery can fail for a day, servers exist from before autoprotect was deployed, people delete
backup instances, and tags change. Once an hour (setting `AUTOPROTECT_SWEEP_SCHEDULE`) the sweep lists every
flexible server in the subscriptions in scope and every instance in the configured vaults (paged: one ARM read
per page, not per server), re-decides every server from what ARM shows now, whatever its ledger state (a
reconciler, not an edge trigger), and hands each difference to the queue through the same intake the events use.
It only reads ARM; it never deletes a backup.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.arm.errors import ArmError
from shared.backup import BackupApi
from shared.bodies import dig
from shared.config import Settings
from shared.ids import InvalidResourceId, ServerId
from shared.intake import Intake, utcnow
from shared.ledger import ConcurrentUpdate, Ledger, ServerRecord, State, format_time, parse_time
from shared.messages import Source
from shared.protection_state import Verdict, verdict
from shared.rules import Route, RuleContext, ServerFacts, Skip, decide

logger = logging.getLogger("autoprotect.sweep")

# A ProtectedElsewhere server is looked at again daily: the other team's instance may be gone.
ELSEWHERE_RECHECK_S = 24 * 3600.0
# NeedsAttention is retried after an hour, then 2, 4, ... up to a day: a fixed cause (a role granted, a vault
# added) heals by itself; a lasting one costs one job a day and no new notification (shared/notify.py).
ATTENTION_BACKOFF_S = 3600.0
MAX_ATTENTION_BACKOFF_S = 24 * 3600.0


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
            record = records.get(server.key)
            if record is not None and record.missing_since:
                self._update(record, lambda found: setattr(found, "missing_since", ""))
            why = self._needs_work(server, body, record, instances.get(server.key))
            if why:
                outcome = self.intake.submit(server, source=Source.SWEEP, reason=why)
                summary.actions[why.split(":")[0]] += 1
                logger.info("sweep: %s: %s (%s)", server, why, outcome)
        for key, record in records.items():
            if key not in listed and record.final and record.state not in (State.GONE, State.UNPROTECTED):
                summary.actions[self._absent(record)] += 1

    def _needs_work(
        self, server: ServerId, body: dict[str, Any], record: ServerRecord | None, instance: dict[str, Any] | None
    ) -> str:
        """Why this server must be decided again, or "" when the ledger and Azure agree.

        Level-triggered: every final state is re-examined against what ARM shows now, except `Unprotected` (an
        operator's choice) and states in flight (the poller has those)."""
        if record is None:
            return "not in the ledger: missed event or pre-existing server"
        if record.state == State.UNPROTECTED or not record.final:
            return ""
        if record.state == State.GONE:
            return "listed again: the server is back (re-created under the same name?)"
        try:
            decision = decide(ServerFacts.from_arm(server, body), self._rules)
        except ArmError as exc:
            logger.warning("sweep: cannot decide %s: %s", server, exc)
            return ""
        if record.state in (State.SKIPPED, State.PLANNED):
            if isinstance(decision, Route):
                return f"now eligible: {decision.reason}"
            return "" if decision.rule == record.rule else f"skip rule changed: now {decision.rule}"
        if record.state == State.PROTECTED:
            return self._protected_drift(decision, record, instance)
        if record.state == State.PROTECTED_ELSEWHERE:
            if instance is not None:
                return "now protected in one of our vaults"
            if self._older_than(record.state_changed_at, ELSEWHERE_RECHECK_S):
                return "re-checking protection in another vault (daily): its instance may be gone"
            return ""
        if record.state == State.NEEDS_ATTENTION:
            if isinstance(decision, Skip):
                return f"now skipped: {decision.reason}"
            backoff = min(ATTENTION_BACKOFF_S * 2 ** min(record.attention_retries, 10), MAX_ATTENTION_BACKOFF_S)
            if self._older_than(record.state_changed_at, backoff):
                return f"retrying {record.error_code or 'NeedsAttention'} after {backoff / 3600:g} h"
        return ""

    def _protected_drift(self, decision: Route | Skip, record: ServerRecord, instance: dict[str, Any] | None) -> str:
        if isinstance(decision, Skip):
            return f"opted out after protection: {decision.reason}"
        if instance is None:
            return "backup instance missing: deleted since it was protected"
        state = dig(instance, "properties", "currentProtectionState")
        if verdict(state) is not Verdict.PROTECTED:
            return f"protection broken: {str(state)[:60]}"
        policy = str(dig(instance, "properties", "policyInfo", "policyId") or "").lower()
        if decision.target.policy.key != record.policy_id.lower() and policy == record.policy_id.lower():
            return f"policy changed: now {decision.target.policy.policy}"
        return ""

    def _older_than(self, stamp: str, seconds: float) -> bool:
        since = parse_time(stamp)
        return since is None or (self._now() - since).total_seconds() >= seconds

    def _absent(self, record: ServerRecord) -> str:
        """A known server missing from the listing: Gone only when a second look, some time later, agrees
        (a listing can lag a create, as a GET can)."""
        if not record.missing_since:
            self._update(record, lambda found: setattr(found, "missing_since", format_time(self._now())))
            return "missing once"
        if not self._older_than(record.missing_since, self.settings.not_found_wait_s):
            return "missing, confirming later"

        def gone(found: ServerRecord) -> None:
            found.move(State.GONE, self._now(), reason="server no longer exists (missing from two sweeps)")
            found.missing_since = ""

        self._update(record, gone)
        return "gone"

    def _update(self, record: ServerRecord, change: Callable[[ServerRecord], None]) -> None:
        found = self.ledger.get(record.server)
        if found is None:
            return
        change(found.record)
        try:
            self.ledger.replace(found.record, found.etag)
        except ConcurrentUpdate:
            logger.info("sweep: %s changed meanwhile; left for the next sweep", record.server_id)
