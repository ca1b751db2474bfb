"""The job message on the queue: versioned JSON, size- and schema-bounded.

Anyone with access to the queue can write to it (other systems are invited to), so a message is treated as
untrusted input: it must be a small, shallow JSON object of a known version and kind, its server ID must pass
the strict validator, and unknown fields are refused. A message can only ask for protection: stopping it
deletes backups, so it is done by an operator with their own Azure identity (`autoprotect unprotect`), never by
the app on behalf of whoever could write to the queue. The same rules are published as JSON Schema in
`schemas/job-message.v1.json` for producers; a test keeps the two in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.ids import InvalidResourceId, ServerId
from shared.safejson import JsonRejected, loads

MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024
MAX_REASON_LENGTH = 500
MAX_MESSAGE_DEPTH = 2  # an object of scalars; nothing legitimate nests


class JobKind(StrEnum):
    PROTECT = "protect"


# Kinds older versions accepted, with what a producer should do now.
_RETIRED_KINDS = {
    "unprotect": (
        "kind 'unprotect' is no longer accepted from the queue: stopping protection deletes backups, so it is done "
        "by an operator with their own Azure identity (autoprotect unprotect <server-id> --yes)"
    ),
}


class Source(StrEnum):
    EVENT = "event"
    MANUAL = "manual"
    POLLER = "poller"
    SWEEP = "sweep"
    EXTERNAL = "external"


class InvalidMessage(ValueError):
    """The message can never be processed; the reason is logged and kept with the poisoned message."""


_FIELDS = {"version", "kind", "serverId", "source", "reason", "eventId", "eventTime", "submittedAt"}
_REQUIRED = {"version", "kind", "serverId"}


@dataclass(frozen=True)
class JobMessage:
    kind: JobKind
    server: ServerId
    source: Source = Source.EXTERNAL
    reason: str = ""
    event_id: str = ""
    event_time: str = ""
    submitted_at: str = ""

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "version": MESSAGE_VERSION,
            "kind": self.kind.value,
            "serverId": self.server.id,
            "source": self.source.value,
            "submittedAt": self.submitted_at or datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if self.reason:
            body["reason"] = self.reason
        if self.event_id:
            body["eventId"] = self.event_id
        if self.event_time:
            body["eventTime"] = self.event_time
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def parse(cls, raw: bytes | str) -> JobMessage:
        """Parse and validate one message body (already base64-decoded by the host)."""
        try:
            body = loads(raw, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_MESSAGE_DEPTH)
        except JsonRejected as exc:
            raise InvalidMessage(f"message rejected: {exc}") from exc
        if not isinstance(body, dict):
            raise InvalidMessage(f"message must be a JSON object, not {type(body).__name__}")
        unknown = set(body) - _FIELDS
        if unknown:
            # Field names are the producer's text: quoted and cut, so a newline in one cannot forge a log line.
            names = ", ".join(ascii(name)[:40] for name in sorted(unknown)[:5])
            raise InvalidMessage(f"unknown field(s): {names}")
        missing = _REQUIRED - set(body)
        if missing:
            raise InvalidMessage(f"missing field(s): {', '.join(sorted(missing))}")
        if body["version"] != MESSAGE_VERSION or isinstance(body["version"], bool):
            raise InvalidMessage(
                f"unsupported version {ascii(body['version'])[:40]}; this app reads version {MESSAGE_VERSION}"
            )
        retired = _RETIRED_KINDS.get(body["kind"]) if isinstance(body["kind"], str) else None
        if retired:
            raise InvalidMessage(retired)
        try:
            kind = JobKind(body["kind"])
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"unknown kind {ascii(body['kind'])[:40]}") from exc
        try:
            server = ServerId.parse(body["serverId"])
        except InvalidResourceId as exc:
            raise InvalidMessage(f"serverId: {exc}") from exc
        try:
            source = Source(body.get("source", Source.EXTERNAL.value))
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"unknown source {ascii(body.get('source'))[:40]}") from exc
        texts = {}
        for name, limit in (
            ("reason", MAX_REASON_LENGTH),
            ("eventId", 200),
            ("eventTime", 64),
            ("submittedAt", 64),
        ):
            value = body.get(name, "")
            if not isinstance(value, str) or len(value) > limit:
                raise InvalidMessage(f"{name} must be a string of at most {limit} characters")
            texts[name] = value
        return cls(
            kind=kind,
            server=server,
            source=source,
            reason=texts["reason"],
            event_id=texts["eventId"],
            event_time=texts["eventTime"],
            submitted_at=texts["submittedAt"],
        )
