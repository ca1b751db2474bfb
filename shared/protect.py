"""The protection service: what the three functions ask for, as plain methods over ARM, the ledger and the queue.

- `submit` (Event Grid and the CLI): record the server once and put one job on the queue.
- `run_job` (queue): take the server one step: read it, decide, validate, create. Writes happen here, so they
  scale out with the queue.
- `poll_due` (timer): follow outstanding operations and retries, and hand every next write back to the queue.

Every ledger update is ETag-conditional; ARM writes are idempotent (validation has no side effects, the backup
instance name is derived from the server ID), so a duplicated or retried job can cost a call but never a
second backup instance.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.arm.errors import ArmError, ArmUnavailable, ForeignOriginError
from shared.arm.lro import Outcome, PollMode, classify, polling_target
from shared.backup import BackupApi, already_protected_in, datasource_is
from shared.bodies import dig
from shared.config import Settings, VaultTarget
from shared.events import Ignored, ResourceEvent, interpret
from shared.ids import ServerId, VaultChildId, vault_of
from shared.intake import Intake, claim_incident, utcnow
from shared.jobqueue import JobQueue
from shared.ledger import (
    FINAL_STATES,
    JOB_STATES,
    ConcurrentUpdate,
    DueItem,
    Ledger,
    ServerRecord,
    State,
    Versioned,
    format_time,
    parse_time,
)
from shared.messages import JobKind, JobMessage, Source
from shared.notify import Notifier
from shared.permissions import Grant, Permissions
from shared.protection_state import RESUME_ACTION, Verdict, verdict
from shared.rules import Route, RuleContext, ServerFacts, Skip, decide

logger = logging.getLogger("autoprotect")

ALREADY_PROTECTED = "UserErrorDppDatasourceAlreadyProtected"
# The documented codes of a vault identity missing a role (PG flexible backup troubleshooting): each gets the
# role-propagation wait, since a grant made minutes ago may not count yet.
PERMISSION_ERRORS = frozenset({"UserErrorMissingRequiredPermissions", "UserErrorMSIMissingPermissions"})
MAX_WATCHDOG_REQUEUES = 5
MAX_WAIT_BACKOFF_S = 600.0
# A stopped server is looked at hourly at most: its start event wakes it sooner.
STOPPED_RECHECK_S = 3600.0
MAX_TRANSIENT_RETRIES = 3
MAX_CONFIGURE_POLL_S = 60.0
# Consecutive unexpected errors polling one server before it is handed to a person instead of polled for ever.
MAX_POLL_ERRORS = 5
# How many times the poller looks for a stopped instance to be gone before asking a person.
MAX_UNPROTECT_CHECKS = 10


@dataclass
class PollSummary:
    due: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Protector:
    def __init__(
        self,
        settings: Settings,
        api: BackupApi,
        ledger: Ledger,
        queue: JobQueue,
        *,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.ledger = ledger
        self.queue = queue
        self._now = clock
        self._rules = RuleContext(settings, api.vault_location)
        self.intake = Intake(ledger, queue, watchdog_s=settings.watchdog_s, clock=clock, notifier=notifier)
        self.permissions = Permissions(api.arm)

    # -- Event Grid and manual submission ---------------------------------------------------------------------

    def on_event(self, event: ResourceEvent) -> str:
        """Handle one delivered event; returns what happened, for the log."""
        result = interpret(event)
        if isinstance(result, Ignored):
            logger.debug("event %s ignored: %s", str(event.id)[:100], result.reason)
            return f"ignored: {result.reason}"
        out_of_scope = self.settings.scope_error(result.server.subscription_id)
        if out_of_scope:
            logger.warning("event %s ignored: %s", str(event.id)[:100], out_of_scope)
            return f"ignored: {out_of_scope}"
        return self.intake.submit(
            result.server, source=Source.EVENT, event_id=result.event_id, event_time=result.event_time
        )

    # -- the queue: one step for one server -------------------------------------------------------------------

    def run_job(self, message: JobMessage) -> str:
        """Take the server one step further. Returns the outcome for the log; raises only on bugs/outages."""
        server = message.server
        current = self.ledger.get(server)
        if current is None:
            # A producer other than us wrote the message (or our submit crashed before recording): record it.
            now = self._now()
            self.ledger.mark_due(server, now + timedelta(seconds=self.settings.watchdog_s))
            record = self.intake.new_record(server, now, message.reason or f"queued by {message.source.value}")
            etag = self.ledger.insert(record)
            current = Versioned(record, etag) if etag else self.ledger.get(server)
            if current is None:
                return "record vanished while being created"
        record = current.record
        if record.final:
            if message.source is Source.EXTERNAL:
                return self.intake.submit(server, source=Source.EXTERNAL, reason=message.reason or "re-submitted")
            return f"nothing to do: {record.state.value}"
        if record.state not in JOB_STATES:
            return f"nothing to do: {record.state.value} is followed by the poller"
        # The job ran, so no message was lost: the watchdog counts only requeues that nothing came of.
        record.requeues = 0
        try:
            if record.state == State.VALIDATED:
                return self._create(current)
            return self._evaluate(current)
        except ConcurrentUpdate:
            return "another instance moved this server on first"
        except ArmUnavailable as exc:
            return self._later(current, exc.retry_after, f"ARM unavailable: {exc.message}")
        except ArmError as exc:
            # A read or grant that ARM refused (e.g. AuthorizationFailed, a refused nextLink): explain, don't retry.
            return self._fail(self._reread(current), exc)

    def _reread(self, current: Versioned) -> Versioned:
        """The record as stored now, with our in-memory changes dropped (a partial step must not be saved)."""
        return self.ledger.get(current.record.server) or current

    def _evaluate(self, current: Versioned) -> str:
        record, now = current.record, self._now()
        server = record.server
        response = self.api.get_server(server)
        if response.status == 404:
            # One 404 is no proof: ARM has answered ResourceNotFound right after a create reported Succeeded
            # (Azure/azure-rest-api-specs#19546). Re-read for a bounded window, then take the server as gone.
            return self._wait(
                current,
                State.WAITING_FOR_SERVER,
                "server not found (ARM can answer 404 just after a create); looking again",
                self.settings.not_found_wait_s,
                ArmError("ResourceNotFound", "the server answered 404"),
                gone_when_over=True,
            )
        if response.status != 200:
            return self._fail(current, self.api.error_of(response))
        facts = ServerFacts.from_arm(server, response.body)
        record.location = facts.location
        try:
            decision = decide(facts, self._rules)
        except ArmError as exc:
            return self._fail(current, exc)
        if isinstance(decision, Skip):
            reason = decision.reason
            if record.protected_at and record.instance_name:
                # Opted out (or out of scope) after protection: autoprotect never deletes backups because of a tag.
                reason += (
                    f"; its backup instance {record.instance_name} and recovery points are left as they are "
                    "(protected, not managed)"
                )
            return self._finish(current, State.SKIPPED, reason, rule=decision.rule)
        assert isinstance(decision, Route)
        applied_policy = record.policy_id  # what autoprotect last put on the instance, if it did
        record.rule = decision.rule
        record.tier = decision.tier
        record.vault_id = decision.target.vault.id
        record.policy_id = decision.target.policy.id
        if facts.stopped:
            # Azure starts a stopped server by itself after 7 days, and people start theirs when they need them:
            # no deadline. The start action's event (ResourceActionSuccess) or the sweep wakes the server.
            return self._wait(
                current,
                State.WAITING_FOR_SERVER,
                f"stopped: the server is {facts.state}; protection goes on when it starts",
                math.inf,
                ArmError("ServerStopped", f"server state is {facts.state}"),
                min_delay_s=self.settings.watchdog_s,
                max_delay_s=STOPPED_RECHECK_S,
            )
        if not facts.ready:
            return self._wait(
                current,
                State.WAITING_FOR_SERVER,
                f"server state is {facts.state or 'unknown'}, not Ready",
                self.settings.not_ready_wait_s,
                ArmError("ServerNotReady", f"server state stayed {facts.state or 'unknown'}"),
                # The write event that completes the deployment wakes us (Intake.submit); this is the fallback.
                min_delay_s=min(self.settings.watchdog_s, self.settings.not_ready_wait_s / 4),
            )
        adopted = self._adopt_existing(current, decision.target, applied_policy)
        if adopted is not None:
            return adopted
        missing = self._missing_grants(server, decision.target) if self.settings.auto_grant else []
        if self.settings.dry_run:
            target = decision.target
            plan = f"dry run: would protect in {target.vault.vault} with {target.policy.policy}"
            plan += f" as {server.backup_instance_name()}"
            if missing:
                plan += "; would grant " + "; ".join(g.describe() for g in missing)
            return self._finish(current, State.PLANNED, plan)
        for grant in missing:
            self.permissions.grant(grant, server.subscription_id)
            record.grants_created = _append(record.grants_created, grant.describe())
            logger.info("%s: granted %s", server, grant.describe())
        response = self.api.validate(facts, decision.target)
        if response.status == 200:
            record.move(State.VALIDATED, now, reason="validation succeeded")
            record.clear_error()
            return self._create(Versioned(record, self._save(current)))
        if response.status in (201, 202):
            return self._track(current, State.VALIDATING, "validating for backup", response.headers)
        error = self.api.error_of(response)
        if error.code == ALREADY_PROTECTED:
            return self._finish(current, State.PROTECTED_ELSEWHERE, error.message, error=error)
        return self._fail(current, error)

    def _adopt_existing(self, current: Versioned, target: VaultTarget, applied_policy: str = "") -> str | None:
        """Use an instance that already protects the server instead of creating one."""
        record = current.record
        instances = self.api.instances_protecting(record.server)
        if not instances:
            return None
        ours = [i for i in instances if (vault_of(str(i.get("id") or "")) or "").lower() == target.vault.key]
        if not ours:
            vaults = already_protected_in(instances)
            return self._finish(current, State.PROTECTED_ELSEWHERE, f"already protected in vault {', '.join(vaults)}")
        instance = ours[0]
        if not datasource_is(instance, record.server):
            # The routing list is ARM's answer, but a PUT onto another server's instance must never follow from it.
            error = ArmError(
                "InstanceMismatch", f"instance {str(instance.get('id'))[:200]} does not protect this server"
            )
            return self._finish(current, State.NEEDS_ATTENTION, error.message, error=error)
        record.instance_name = str(instance.get("name") or record.server.backup_instance_name())
        current_policy = str(dig(instance, "properties", "policyInfo", "policyId") or "")
        record.drift = ""
        if current_policy and current_policy.lower() != target.policy.key:
            configured = verdict(dig(instance, "properties", "currentProtectionState")) is Verdict.PROTECTED
            chosen_by_us = current_policy.lower() == applied_policy.lower()
            if not chosen_by_us:
                # A person chose this policy (the portal, az, Terraform): theirs to keep; the ledger says so.
                record.drift = (
                    f"policy {current_policy.rsplit('/', 1)[-1]} was chosen outside autoprotect; the rules ask for "
                    f"{target.policy.policy} ({record.rule}); left as it is"
                )
            elif configured and not self.settings.dry_run:
                # The tier (or the routing) now asks for another policy: re-point the same instance. Only a
                # configured instance: the service refuses changes to one that is configuring, stopped or suspended.
                reason = f"re-pointing from policy {current_policy.rsplit('/', 1)[-1]}"
                record.move(State.VALIDATED, self._now(), reason=reason)
                return self._create(Versioned(record, self._save(current)), instance_name=record.instance_name)
            else:
                record.policy_id = current_policy  # re-pointed once it is configured again (the next sweep)
        return self._on_instance(current, instance, adopting=True)

    def _create(self, current: Versioned, *, instance_name: str = "") -> str:
        record = current.record
        target = self._target_of(record)
        facts = ServerFacts(record.server, record.location, "Ready", "Primary")
        record.instance_name = instance_name or record.server.backup_instance_name()
        response = self.api.create_instance(facts, target, record.instance_name)
        if response.status in (200, 201, 202):
            if polling_target(response.headers) is not None:
                return self._track(current, State.CREATING, "creating the backup instance", response.headers)
            return self._configuring(current)
        error = self.api.error_of(response)
        if error.code == ALREADY_PROTECTED:
            return self._finish(current, State.PROTECTED_ELSEWHERE, error.message, error=error)
        return self._fail(current, error)

    # -- the timer: follow what is outstanding ----------------------------------------------------------------

    def poll_due(self) -> PollSummary:
        """Look at every server whose next check has come, in parallel, and move each on."""
        items = self.ledger.due(self._now(), self.settings.poll_batch)
        summary = PollSummary(due=len(items))
        if not items:
            return summary
        workers = min(self.settings.poll_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
            for outcome in pool.map(self._poll_one_safely, items):
                summary.count(outcome)
        return summary

    def _poll_one_safely(self, item: DueItem) -> str:
        try:
            return self._poll_one(item)
        except ConcurrentUpdate:
            return "raced"
        except Exception as exc:
            # One bad server must not stop the others; its marker stays, so it is looked at again, but only a few
            # times: an answer we cannot handle would otherwise be polled every run, for ever, with nobody told.
            logger.exception("polling %s failed", item.server)
            return self._count_poll_error(item, exc)

    def _count_poll_error(self, item: DueItem, exc: Exception) -> str:
        try:
            current = self.ledger.get(item.server)
            if current is None or current.record.final:
                return "error"
            record = current.record
            record.poll_errors += 1
            if record.poll_errors >= MAX_POLL_ERRORS:
                error = ArmError("PollFailed", f"{type(exc).__name__}: {str(exc)[:300]}")
                self._finish(
                    current,
                    State.NEEDS_ATTENTION,
                    f"polling failed {record.poll_errors} times in a row in {record.state.value}",
                    error=error,
                )
                return "error: handed to a person"
            self.ledger.replace(record, current.etag)
        except Exception:
            logger.exception("could not record the polling error for %s", item.server)
        return "error"

    def _poll_one(self, item: DueItem) -> str:
        now = self._now()
        current = self.ledger.get(item.server)
        if current is None or current.record.final:
            self.ledger.unmark_due(item)
            return "finished"
        record = current.record
        next_check = parse_time(record.next_check_at)
        if next_check is not None and next_check > now + timedelta(seconds=1):
            self.ledger.mark_due(item.server, next_check)  # the marker was early (written before a later save)
            return "not yet"
        try:
            if record.state in JOB_STATES:
                return self._requeue(current)
            if record.state == State.UNPROTECTING and not record.operation_url:
                return self._poll_stopped_instance(current)
            if record.state in (State.VALIDATING, State.CREATING, State.UNPROTECTING):
                return self._poll_operation(current)
            if record.state == State.CONFIGURING:
                return self._poll_instance(current)
        except ArmUnavailable as exc:
            return self._later(current, exc.retry_after, f"ARM unavailable: {exc.message}")
        return "unknown state"

    def _requeue(self, current: Versioned) -> str:
        """A retry time has come, or a queued job never ran: hand the server to the queue again."""
        record = current.record
        if record.state in (State.QUEUED, State.VALIDATED):
            record.requeues += 1
            if record.requeues > MAX_WATCHDOG_REQUEUES:
                return self._finish(
                    current,
                    State.NEEDS_ATTENTION,
                    f"the job did not complete after {MAX_WATCHDOG_REQUEUES} attempts; see the poison queue",
                    error=ArmError("JobNotCompleted", "job re-queued too many times"),
                )
        record.next_check_at = format_time(self._now() + timedelta(seconds=self.settings.watchdog_s))
        self._save(current)
        self.queue.send(JobMessage(JobKind.PROTECT, record.server, Source.POLLER, reason=record.state.value))
        return "requeued"

    def _poll_operation(self, current: Versioned) -> str:
        record = current.record
        try:
            response = self.api.poll(record.operation_url)
        except ForeignOriginError as exc:
            logger.error("refused operation URL for %s: %s", record.server_id, exc.message)
            return self._fail(current, exc)
        mode = PollMode(record.operation_mode or PollMode.ASYNC_OPERATION)
        if response.status >= 400 and mode is PollMode.ASYNC_OPERATION:
            return self._fail(current, self.api.error_of(response))
        result = classify(
            mode, response.status, response.body, response.headers, default_retry_after=self.settings.retry_s
        )
        if result.outcome is Outcome.RUNNING:
            return self._still_running(current, result.retry_after_s, result.body)
        if result.outcome is Outcome.FAILED:
            assert result.error is not None
            return self._fail(current, result.error)
        if record.state == State.VALIDATING:
            record.move(State.VALIDATED, self._now(), reason="validation succeeded")
            record.clear_error()
            return self._requeue(current)
        if record.state == State.UNPROTECTING:
            return self._unprotected(current)
        return self._configuring(current)

    def _still_running(self, current: Versioned, retry_after_s: float, body: Any) -> str:
        """Look again later, unless the operation has run past its deadline (a stuck or unknown status)."""
        record, now = current.record, self._now()
        since = parse_time(record.transitions.get(record.state.value, "")) or now
        if (now - since).total_seconds() <= self.settings.operation_timeout_s:
            return self._later(current, retry_after_s, record.reason)
        status = str(body.get("status"))[:40] if isinstance(body, dict) else "202 Accepted"
        minutes = self.settings.operation_timeout_s / 60
        error = ArmError(
            "OperationTimeout",
            f"the operation's status stayed {status!r} for more than {minutes:g} min",
            recommended_action="Look the operation up in the vault's jobs, then `autoprotect submit` the server.",
        )
        return self._finish(current, State.NEEDS_ATTENTION, f"{record.state.value} did not finish: {error.message}",
                            error=error)  # fmt: skip

    # -- an operator's stop-protection, followed read-only ----------------------------------------------------

    def _poll_stopped_instance(self, current: Versioned) -> str:
        """The operator's delete answered without an operation to follow: done once the instance is gone."""
        record = current.record
        response = self.api.get_instance(self._target_of(record).vault, record.instance_name)
        if response.status == 404:
            return self._unprotected(current)
        if response.status != 200:
            return self._fail(current, self.api.error_of(response))
        record.attempts += 1
        if record.attempts > MAX_UNPROTECT_CHECKS:
            error = ArmError("StopProtectionIncomplete", f"backup instance {record.instance_name} still exists")
            return self._finish(
                current, State.NEEDS_ATTENTION, "protection was asked to stop but the instance remains", error=error
            )
        return self._later(current, self.settings.retry_s * record.attempts, record.reason)

    def _unprotected(self, current: Versioned) -> str:
        """The operator's request took effect. Entering Unprotected is always told (the incident rule), once."""
        record = current.record
        who = f" by {record.stopped_by}" if record.stopped_by else ""
        return self._finish(current, State.UNPROTECTED, f"backup instance {record.instance_name} deleted{who}")

    def _poll_instance(self, current: Versioned) -> str:
        record = current.record
        response = self.api.get_instance(self._target_of(record).vault, record.instance_name)
        if response.status == 404:
            record.move(State.QUEUED, self._now(), reason="backup instance disappeared while configuring")
            return self._requeue(current)
        if response.status != 200:
            return self._fail(current, self.api.error_of(response))
        return self._on_instance(current, response.body, adopting=False)

    def _on_instance(self, current: Versioned, instance: Any, *, adopting: bool) -> str:
        """Decide from a backup instance's currentProtectionState (operation success is not protection)."""
        record, now = current.record, self._now()
        properties = instance.get("properties") if isinstance(instance, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        state = str(properties.get("currentProtectionState") or "")[:60]
        seen = verdict(state)
        if seen is Verdict.PROTECTED:
            return self._finish(current, State.PROTECTED, "protection configured")
        if seen is Verdict.FAILED:
            details = properties.get("protectionErrorDetails") or (properties.get("protectionStatus") or {}).get(
                "errorDetails"
            )
            error = ArmError.from_body({"error": details} if isinstance(details, dict) else {}, status=None)
            if error.code == "Unknown":
                error = ArmError(state, f"backup instance reports {state}")
            return self._finish(current, State.NEEDS_ATTENTION, f"backup instance in {state}", error=error)
        if seen in RESUME_ACTION:
            return self._resume(current, seen, state)
        if seen is Verdict.DELETING:
            error = ArmError(
                "InstanceBeingDeleted",
                f"backup instance {record.instance_name} is {state}",
                recommended_action="Undelete it in the vault (its recovery points come back) and resume protection,"
                " or wait for the purge and `autoprotect submit` the server.",
            )
            return self._finish(current, State.NEEDS_ATTENTION, f"backup instance is {state}", error=error)
        if record.state != State.CONFIGURING or adopting:
            record.move(State.CONFIGURING, now, reason=f"backup instance is {state or 'configuring'}")
        since = parse_time(record.transitions.get(State.CONFIGURING.value, "")) or now
        if (now - since).total_seconds() > self.settings.configure_timeout_s:
            return self._finish(
                current,
                State.NEEDS_ATTENTION,
                f"backup instance still {state or 'configuring'} after {self.settings.configure_timeout_s / 60:g} min",
                error=ArmError("ConfigureTimeout", f"currentProtectionState stayed {state}"),
            )
        # Configuration takes minutes: look again on a doubling interval, capped at a minute.
        delay = min(self.settings.retry_s * (2 ** min(record.attempts, 10)), MAX_CONFIGURE_POLL_S)
        record.attempts += 1
        return self._later(current, delay, record.reason)

    def _resume(self, current: Versioned, seen: Verdict, state: str) -> str:
        """Someone stopped or suspended protection: resume it (the default), or only say so."""
        record = current.record
        who = "stopped protection" if seen is Verdict.STOPPED else "suspended its backups"
        error = ArmError(
            "ProtectionStopped" if seen is Verdict.STOPPED else "ProtectionSuspended",
            f"someone {who}: backup instance {record.instance_name} is {state}",
            recommended_action="Find out who and why in the vault's Activity Log; tag the server "
            f"{self.settings.optout_tag}={self.settings.optout_value} if it should stay unprotected.",
        )
        if not self.settings.resume_protection:
            return self._finish(
                current, State.NEEDS_ATTENTION, f"{error.message}; not resumed (AUTOPROTECT_RESUME_PROTECTION=false)",
                error=error,
            )  # fmt: skip
        if self.settings.dry_run:
            return self._finish(current, State.PLANNED, f"dry run: would {RESUME_ACTION[seen]} ({error.message})")
        response = self.api.resume(self._target_of(record).vault, record.instance_name, RESUME_ACTION[seen])
        if response.status not in (200, 201, 202):
            return self._fail(current, self.api.error_of(response))
        record.set_error(error.code, error.message, error.recommended_action)
        reason = f"resuming: {error.message} ({RESUME_ACTION[seen]})"
        if polling_target(response.headers) is None:
            record.move(State.CONFIGURING, self._now(), reason=reason)
            return self._later(current, min(self.settings.retry_s, 10.0), reason)
        return self._track(current, State.CREATING, reason, response.headers)

    def _configuring(self, current: Versioned) -> str:
        record = current.record
        record.move(State.CONFIGURING, self._now(), reason="backup instance created; waiting for configuration")
        record.clear_error()
        return self._later(current, min(self.settings.retry_s, 10.0), record.reason)

    # -- transitions ------------------------------------------------------------------------------------------

    def _track(self, current: Versioned, state: State, reason: str, headers: Any) -> str:
        """Enter a polled state, remembering where to poll (after checking the URL stays on ARM)."""
        record = current.record
        target = polling_target(headers)
        if target is None:
            return self._fail(current, ArmError("NoOperationUrl", "ARM accepted the request without a status URL"))
        try:
            self.api.check_operation_url(target.url)
        except ForeignOriginError as exc:
            logger.error("refused operation URL for %s: %s", record.server_id, exc.message)
            return self._fail(current, exc)
        record.move(state, self._now(), reason=reason)
        record.operation_url = target.url
        record.operation_mode = target.mode.value
        return self._later(current, target.retry_after_s, reason)

    def _later(self, current: Versioned, delay_s: float, reason: str) -> str:
        """Stay in the current state and look again after `delay_s`."""
        record = current.record
        if reason:
            record.reason = reason
        record.next_check_at = format_time(self._now() + timedelta(seconds=max(delay_s, 0.1)))
        self._save(current)
        return f"{record.state.value}: next check in {delay_s:.0f}s"

    def _wait(
        self,
        current: Versioned,
        state: State,
        reason: str,
        window_s: float,
        error: ArmError,
        *,
        min_delay_s: float = 0,
        max_delay_s: float = MAX_WAIT_BACKOFF_S,
        gone_when_over: bool = False,
    ) -> str:
        """Wait for something outside our control (a server becoming Ready, roles propagating), bounded."""
        record, now = current.record, self._now()
        # The window spans re-validations (Validating in between), so it is kept while the same error recurs.
        same_wait = record.wait_started_at and record.error_code == error.code
        started = parse_time(record.wait_started_at) if same_wait else None
        if started is None:
            started = now
            record.attempts = 0
        if (now - started).total_seconds() >= window_s:
            if gone_when_over:
                return self._finish(current, State.GONE, f"server no longer exists (404 for {window_s / 60:g} min)")
            return self._finish(current, State.NEEDS_ATTENTION, f"gave up waiting: {reason}", error=error)
        record.move(state, now, reason=reason)
        record.wait_started_at = format_time(started)
        record.set_error(error.code, error.message, error.recommended_action)
        delay = max(min(self.settings.retry_s * (2 ** min(record.attempts, 12)), max_delay_s), min_delay_s)
        record.attempts += 1
        record.next_check_at = format_time(now + timedelta(seconds=delay))
        self._save(current)
        return f"{state.value}: retry in {delay:.0f}s"

    def _fail(self, current: Versioned, error: ArmError) -> str:
        if error.code in PERMISSION_ERRORS:
            hint = self._permission_hint(current.record)
            if hint:
                error = ArmError(error.code, error.message, error.status, f"Grant {hint}", error.is_retryable)
            return self._wait(
                current,
                State.WAITING_FOR_PERMISSIONS,
                "the vault's identity lacks a required role; re-validating while role assignments propagate"
                + (f" (missing: {hint})" if hint else ""),
                self.settings.permission_wait_s,
                error,
            )
        record = current.record
        if _transient(error) and record.attempts < MAX_TRANSIENT_RETRIES:
            # The service says trying again may work (or it had an internal error): start over from validation.
            record.move(State.QUEUED, self._now(), reason=f"retrying after a transient service error ({error.code})")
            record.set_error(error.code, error.message, error.recommended_action)
            record.attempts += 1
            delay = min(self.settings.retry_s * (2**record.attempts), MAX_WAIT_BACKOFF_S)
            return self._later(current, delay, record.reason)
        return self._finish(current, State.NEEDS_ATTENTION, f"{error.code}: {error.message}", error=error)

    def _finish(
        self, current: Versioned, state: State, reason: str, *, rule: str = "", error: ArmError | None = None
    ) -> str:
        record = current.record
        previous = record.state
        record.move(state, self._now(), reason=reason, rule=rule)
        if error is not None:
            record.set_error(error.code, error.message, error.recommended_action)
        elif state in (State.PROTECTED, State.SKIPPED, State.GONE):
            record.clear_error()
        record.poll_errors = 0
        if state != State.NEEDS_ATTENTION:
            record.attention_retries = 0
        incident = claim_incident(record, previous) if self.intake.notifier else None
        # The due marker is left for the poller, which removes it with an ETag check (no race with a requeue).
        self.ledger.replace(record, current.etag)
        logger.info("%s -> %s: %s", record.server_id, state.value, reason)
        if incident is not None and self.intake.notifier is not None:
            self.intake.notifier.send(incident)  # after the save: the instance that lost the race never sends
        return state.value

    def _missing_grants(self, server: ServerId, target: VaultTarget) -> list[Grant]:
        principal = self.api.vault_principal(target.vault)
        if not principal:
            raise ArmError(
                "VaultWithoutIdentity", f"vault {target.vault} has no managed identity (system- or user-assigned)"
            )
        return self.permissions.missing(server, principal)

    def _permission_hint(self, record: ServerRecord) -> str:
        """Which role, scope and principal to grant, read from ARM; empty when that cannot be read."""
        if not record.vault_id:
            return ""
        try:
            missing = self._missing_grants(record.server, self._target_of(record))
        except ArmError as exc:
            logger.info("cannot list role assignments for %s: %s", record.server_id, exc)
            return ""
        return "; ".join(grant.describe() for grant in missing)

    def _save(self, current: Versioned) -> str:
        record = current.record
        record.poll_errors = 0  # a step that got this far was not an error
        etag = self.ledger.replace(record, current.etag)
        due = parse_time(record.next_check_at)
        if record.state not in FINAL_STATES and due is not None:
            self.ledger.mark_due(record.server, due)
        return etag

    def _target_of(self, record: ServerRecord) -> VaultTarget:
        return VaultTarget(VaultChildId.parse_vault(record.vault_id), VaultChildId.parse_policy(record.policy_id))


def _transient(error: ArmError) -> bool:
    """Failures worth a bounded retry: the service marked them retryable, or reported an internal error."""
    return error.is_retryable is True or "internalerror" in error.code.lower() or error.code in ("HTTP500", "HTTP503")


def _append(existing: str, item: str) -> str:
    """Add one line to a newline-separated ledger field, bounded so the entity stays far below 64 KB."""
    lines = [line for line in existing.splitlines() if line] + [item]
    return "\n".join(lines[-20:])
