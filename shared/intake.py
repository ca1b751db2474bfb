"""Taking in work: record a server once and put one job on the queue.

Shared by the Event Grid function (through the Protector) and the operator CLI, which needs no ARM access to
submit. Safe to repeat: a duplicate delivery finds the record and stops.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.ids import ServerId
from shared.jobqueue import JobQueue
from shared.ledger import ConcurrentUpdate, Ledger, ServerRecord, State, format_time, parse_time
from shared.messages import JobKind, JobMessage, Source
from shared.notify import Incident, Notifier, pending_incident

# Final states a fresh write event re-opens: a tag change may opt a server in or out, or change its tier; a
# re-created server is new. A dry-run plan is re-made on the next write too, so turning DRY_RUN off takes effect
# server by server.
REOPEN_ON_WRITE = frozenset({State.SKIPPED, State.GONE, State.PLANNED, State.PROTECTED})
# Sweep reasons that mean protection broke behind our back (shared/sweep.py): an incident.
BROKEN = ("backup instance missing", "protection broken")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self,
        ledger: Ledger,
        queue: JobQueue,
        *,
        watchdog_s: float,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
    ) -> None:
        self.ledger = ledger
        self.queue = queue
        self.notifier = notifier
        self._watchdog = timedelta(seconds=watchdog_s)
        self._now = clock

    def submit(
        self,
        server: ServerId,
        *,
        source: Source,
        reason: str = "",
        event_id: str = "",
        event_time: str = "",
    ) -> str:
        """Record the server (once) and enqueue a job. Safe to repeat: duplicates find the record and stop.

        Events re-open only Skipped and Gone servers; a manual submission re-opens any finished server.
        """
        message = JobMessage(JobKind.PROTECT, server, source, reason=reason, event_id=event_id, event_time=event_time)
        for _ in range(5):
            now = self._now()
            existing = self.ledger.get(server)
            if existing is None:
                # Marker, message, record, in that order: a crash at any point leaves either nothing (the
                # event is redelivered) or a job that will find or create the record itself.
                self.ledger.mark_due(server, now + self._watchdog)
                self.queue.send(message)
                if self.ledger.insert(self.new_record(server, now, reason or f"queued by {source.value}", event_time)):
                    return "queued"
                return "queued (recorded concurrently)"
            record = existing.record
            if source is Source.EVENT and record.state == State.WAITING_FOR_SERVER:
                # The deployment's completing write: the server is likely Ready now, so look without waiting.
                self.queue.send(message)
                return "woken: the server was written while we waited for it"
            reopen = record.final and (source is not Source.EVENT or record.state in REOPEN_ON_WRITE)
            if not reopen:
                return f"already known: {record.state.value}"
            if source is Source.EVENT and _older(event_time, record.state_changed_at):
                return f"stale event for a server decided later ({record.state.value})"
            self.ledger.mark_due(server, now + self._watchdog)
            previous = record.state
            record.move(State.QUEUED, now, reason=reason or f"re-queued by {source.value}")
            record.clear_error()
            if source is Source.SWEEP and previous == State.PROTECTED and reason.startswith(BROKEN):
                # Protection broke behind our back (an instance deleted or stopped): an incident worth telling.
                record.set_error("ProtectionBroken", reason, "autoprotect is re-protecting the server; find out why")
            if source is Source.SWEEP and previous == State.NEEDS_ATTENTION:
                record.attention_retries += 1  # the sweep's backoff for this incident doubles
            incident = claim_incident(record, previous) if self.notifier else None
            record.requeues = 0
            record.next_check_at = format_time(now + self._watchdog)
            try:
                self.ledger.replace(record, existing.etag)
            except ConcurrentUpdate:
                continue
            self.queue.send(message)
            if incident is not None and self.notifier is not None:
                self.notifier.send(incident)
            return "re-queued"
        return "gave up after repeated concurrent updates"

    def new_record(self, server: ServerId, now: datetime, reason: str, event_time: str = "") -> ServerRecord:
        record = ServerRecord(server_id=server.id, state=State.QUEUED, first_seen_at=format_time(now))
        record.event_time = event_time
        record.move(State.QUEUED, now, reason=reason)
        record.next_check_at = format_time(now + self._watchdog)
        return record


def _older(event_time: str, decided_at: str) -> bool:
    """True when the event happened before the record's last decision (a late redelivery)."""
    decided = parse_time(decided_at)
    if not event_time or decided is None:
        return False
    try:
        happened = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        return False
    if happened.tzinfo is None:
        happened = happened.replace(tzinfo=UTC)
    return happened < decided


def claim_incident(record: ServerRecord, previous: State | None) -> Incident | None:
    """The incident this transition starts, marked on the record so it is sent once (the save is the claim)."""
    incident = pending_incident(record, previous, record.notified_incident)
    if incident is not None:
        record.notified_incident = incident.key
    return incident
