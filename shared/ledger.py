"""The durable ledger: one Table Storage record per server, plus a small index of work that is due.

Records live in partition = subscription ID, row = `{resource group}|{server}`. Every update is conditional on
the ETag read, so two function instances can never overwrite each other: the loser re-reads and finds the work
already done. Work that must be looked at again later (an operation to poll, a retry, a watchdog on a queued
job) has a marker in the `~due` partition; the poller reads only that partition, so its cost grows with the
outstanding work, never with the number of servers ever seen. Records hold plain strings and numbers only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.ids import ServerId

DUE_PARTITION = "~due"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class State(StrEnum):
    """A server's protection state; see docs/ARCHITECTURE.md for the transitions."""

    QUEUED = "Queued"
    WAITING_FOR_SERVER = "WaitingForServer"
    VALIDATING = "Validating"
    WAITING_FOR_PERMISSIONS = "WaitingForPermissions"
    VALIDATED = "Validated"
    CREATING = "Creating"
    CONFIGURING = "Configuring"
    PROTECTED = "Protected"
    PROTECTED_ELSEWHERE = "ProtectedElsewhere"
    SKIPPED = "Skipped"
    GONE = "Gone"
    NEEDS_ATTENTION = "NeedsAttention"
    PLANNED = "Planned"
    UNPROTECTING = "Unprotecting"  # an operator's stop-protection request is being followed (read-only)
    UNPROTECTED = "Unprotected"


FINAL_STATES = frozenset(
    {
        State.PROTECTED,
        State.PROTECTED_ELSEWHERE,
        State.SKIPPED,
        State.GONE,
        State.NEEDS_ATTENTION,
        State.PLANNED,
        State.UNPROTECTED,
    }
)
# States in which the next step is a job on the queue (the due marker is a retry time or a watchdog).
JOB_STATES = frozenset({State.QUEUED, State.WAITING_FOR_SERVER, State.WAITING_FOR_PERMISSIONS, State.VALIDATED})
# States in which the poller reads ARM (an operation status or the backup instance).
POLL_STATES = frozenset({State.VALIDATING, State.CREATING, State.CONFIGURING, State.UNPROTECTING})


def format_time(moment: datetime) -> str:
    """Fixed-width UTC text, so string comparison in table queries orders like time."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class ServerRecord:
    server_id: str
    state: State
    reason: str = ""
    rule: str = ""
    tier: str = ""
    vault_id: str = ""
    policy_id: str = ""
    instance_name: str = ""
    operation_url: str = ""
    operation_mode: str = ""
    location: str = ""
    next_check_at: str = ""
    attempts: int = 0
    requeues: int = 0
    wait_started_at: str = ""
    error_code: str = ""
    error_message: str = ""
    error_action: str = ""
    event_time: str = ""
    first_seen_at: str = ""
    protected_at: str = ""
    state_changed_at: str = ""
    notified_incident: str = ""
    grants_created: str = ""
    stopped_by: str = ""
    poll_errors: int = 0
    # A difference between Azure and the rules that a person made and autoprotect leaves alone (a policy chosen
    # by hand); shown by `status` and the report.
    drift: str = ""
    # When the sweep first found a known server missing from its listing: Gone only on a second look later.
    missing_since: str = ""
    # How many times the sweep has retried this NeedsAttention incident (its backoff doubles each time).
    attention_retries: int = 0
    transitions: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> ServerId:
        return ServerId.parse(self.server_id)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def move(self, state: State, now: datetime, *, reason: str = "", rule: str = "") -> None:
        """Enter `state`, stamping the transition; an operation in flight is forgotten on every move."""
        stamp = format_time(now)
        if state != self.state or not self.state_changed_at:
            self.state_changed_at = stamp
            self.transitions[state.value] = stamp
        self.state = state
        self.reason = reason
        if rule:
            self.rule = rule
        self.operation_url = ""
        self.operation_mode = ""
        if state == State.PROTECTED and not self.protected_at:
            self.protected_at = stamp
        if state in FINAL_STATES:
            self.next_check_at = ""

    def set_error(self, code: str, message: str, action: str = "") -> None:
        self.error_code, self.error_message, self.error_action = code[:200], message[:2000], action[:1000]

    def clear_error(self) -> None:
        """Forget the last error and any bounded wait that it started."""
        self.set_error("", "", "")
        self.wait_started_at = ""
        self.attempts = 0

    def to_entity(self) -> dict[str, Any]:
        server = self.server
        entity: dict[str, Any] = {"PartitionKey": server.subscription_id, "RowKey": server.row_key}
        for name, value in asdict(self).items():
            if name == "transitions":
                value = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, State):
                value = value.value
            entity[_camel(name)] = value
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> ServerRecord:
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = entity.get(_camel(item.name))
            if raw is None:
                continue
            if item.name == "transitions":
                try:
                    raw = json.loads(raw) if isinstance(raw, str) else {}
                except ValueError:
                    raw = {}
            elif item.name == "state":
                raw = State(raw)
            elif item.name in ("attempts", "requeues", "poll_errors", "attention_retries"):
                raw = int(raw)
            values[item.name] = raw
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head[:1].upper() + head[1:] + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class Versioned:
    record: ServerRecord
    etag: str


@dataclass(frozen=True)
class DueItem:
    server: ServerId
    due_at: str
    etag: str


class ConcurrentUpdate(Exception):
    """Someone else updated the record since we read it; re-read and reconsider."""


class Ledger:
    """Thread-safe wrapper over one table (the TableClient is safe to share)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def ensure_table(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._table.create_table()

    def get(self, server: ServerId) -> Versioned | None:
        try:
            entity = self._table.get_entity(server.subscription_id, server.row_key)
        except ResourceNotFoundError:
            return None
        return Versioned(ServerRecord.from_entity(dict(entity)), str(entity.metadata["etag"]))

    def insert(self, record: ServerRecord) -> str | None:
        """Create the record; None when one exists already (the caller decides what that means)."""
        try:
            result = self._table.create_entity(record.to_entity())
        except ResourceExistsError:
            return None
        return str(result["etag"])

    def replace(self, record: ServerRecord, etag: str) -> str:
        """Replace the record if it is unchanged since `etag`; raise ConcurrentUpdate otherwise."""
        try:
            result = self._table.update_entity(
                record.to_entity(),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate(record.server_id) from exc
        return str(result["etag"])

    def all(self, subscription_id: str | None = None) -> Iterator[ServerRecord]:
        if subscription_id:
            entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": subscription_id.lower()})
        else:
            entities = self._table.query_entities("PartitionKey ne @due", parameters={"due": DUE_PARTITION})
        for entity in entities:
            yield ServerRecord.from_entity(dict(entity))

    # -- the due index ----------------------------------------------------------------------------------------

    def mark_due(self, server: ServerId, at: datetime) -> None:
        """Ask the poller to look at this server at `at` (or on its first run after)."""
        self._table.upsert_entity(
            {
                "PartitionKey": DUE_PARTITION,
                "RowKey": _due_row(server),
                "ServerId": server.id,
                "DueAt": format_time(at),
            },
            mode=UpdateMode.REPLACE,
        )

    def unmark_due(self, item: DueItem) -> bool:
        """Remove a marker only if nobody re-marked it since it was read (a requeue races with the poller)."""
        try:
            self._table.delete_entity(
                DUE_PARTITION,
                _due_row(item.server),
                etag=item.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            return True
        return True

    def due(self, now: datetime, limit: int) -> list[DueItem]:
        entities = self._table.query_entities(
            "PartitionKey eq @pk and DueAt le @now",
            parameters={"pk": DUE_PARTITION, "now": format_time(now)},
            results_per_page=min(limit, 1000),
        )
        items: list[DueItem] = []
        for entity in entities:
            try:
                server = ServerId.parse(entity.get("ServerId"))
            except ValueError:
                continue
            items.append(DueItem(server, str(entity.get("DueAt", "")), str(entity.metadata["etag"])))
            if len(items) >= limit:
                break
        return items

    def due_count(self) -> int:
        return sum(1 for _ in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": DUE_PARTITION}))


def _due_row(server: ServerId) -> str:
    return f"{server.subscription_id}|{server.row_key}"
