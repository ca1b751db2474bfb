"""Turning an Event Grid resource event into "this flexible server was written (or started)", or a reason to
ignore it.

`Microsoft.Resources.ResourceWriteSuccess` fires for every PUT/PATCH through ARM: tag changes, child resources
(databases, firewall rules, configurations), and autoprotect's own writes. Only a write whose operation is
exactly `Microsoft.DBforPostgreSQL/flexibleServers/write` and whose subject is exactly a server ID matters. Starting
a stopped server is a POST, which Event Grid sends as `Microsoft.Resources.ResourceActionSuccess` with operation
`Microsoft.DBforPostgreSQL/flexibleServers/start/action`: it wakes a server that waits for its start. The event
body is otherwise untrusted (the server itself is re-read from ARM before anything is decided).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.ids import InvalidResourceId, ServerId

WRITE_SUCCESS = "microsoft.resources.resourcewritesuccess"
ACTION_SUCCESS = "microsoft.resources.resourceactionsuccess"
SERVER_WRITE_OPERATION = "microsoft.dbforpostgresql/flexibleservers/write"
SERVER_START_OPERATION = "microsoft.dbforpostgresql/flexibleservers/start/action"
# The (event type, operation) pairs that mean "look at this server again"; infra/eventgrid/filter.json delivers
# exactly these (tests/unit/test_events.py checks the two agree).
WANTED = {WRITE_SUCCESS: SERVER_WRITE_OPERATION, ACTION_SUCCESS: SERVER_START_OPERATION}


@dataclass(frozen=True)
class ResourceEvent:
    """The fields we use of an event, whichever schema it arrived in."""

    id: str
    event_type: str
    subject: str
    event_time: str
    data: Any


@dataclass(frozen=True)
class ServerWritten:
    server: ServerId
    event_id: str
    event_time: str


@dataclass(frozen=True)
class Ignored:
    reason: str


def interpret(event: ResourceEvent) -> ServerWritten | Ignored:
    """Decide whether an event announces a flexible server write; never raises on malformed input."""
    wanted = WANTED.get(event.event_type.lower()) if isinstance(event.event_type, str) else None
    if wanted is None:
        return Ignored(f"event type {_short(event.event_type)} is not ResourceWriteSuccess or ResourceActionSuccess")
    data = event.data if isinstance(event.data, dict) else {}
    operation = data.get("operationName")
    if not isinstance(operation, str) or operation.lower() != wanted:
        return Ignored(f"operation {_short(operation)} is not a flexible server write or start")
    resource_uri = data.get("resourceUri")
    subject = event.subject
    candidate = resource_uri if isinstance(resource_uri, str) and resource_uri else subject
    try:
        server = ServerId.parse(candidate)
    except InvalidResourceId as exc:
        return Ignored(f"resource is not a flexible server ID: {exc}")
    if isinstance(subject, str) and subject and subject.lower().rstrip("/") != server.key:
        # Subject and resourceUri disagree: trust neither.
        try:
            if ServerId.parse(subject).key != server.key:
                return Ignored("event subject and data.resourceUri name different resources")
        except InvalidResourceId:
            return Ignored("event subject and data.resourceUri name different resources")
    event_id = event.id if isinstance(event.id, str) else ""
    event_time = event.event_time if isinstance(event.event_time, str) else ""
    return ServerWritten(server, event_id[:200], event_time[:64])


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."
