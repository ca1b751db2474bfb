"""The job message on the queue: versioned JSON, size- and schema-bounded.

Anyone with access to the queue can write to it (other systems are invited to), so a message is treated as
untrusted input: it must be a small JSON object of a known version and kind, its server ID must pass the strict
validator, and unknown fields are refused. The same rules are published as JSON Schema in
`schemas/job-message.v1.json` for producers; a test keeps the two in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.ids import InvalidResourceId, ServerId

MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024
MAX_REASON_LENGTH = 500


class JobKind(StrEnum):
    PROTECT = "protect"
    UNPROTECT = "unprotect"


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
        data = raw.encode() if isinstance(raw, str) else raw
        if len(data) > MAX_MESSAGE_BYTES:
            raise InvalidMessage(f"message is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidMessage(f"message is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise InvalidMessage(f"message must be a JSON object, not {type(body).__name__}")
        unknown = set(body) - _FIELDS
        if unknown:
            raise InvalidMessage(f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
        missing = _REQUIRED - set(body)
        if missing:
            raise InvalidMessage(f"missing field(s): {', '.join(sorted(missing))}")
        if body["version"] != MESSAGE_VERSION or isinstance(body["version"], bool):
            raise InvalidMessage(f"unsupported version {body['version']!r}; this app reads version {MESSAGE_VERSION}")
        try:
            kind = JobKind(body["kind"])
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"unknown kind {str(body['kind'])[:40]!r}") from exc
        try:
            server = ServerId.parse(body["serverId"])
        except InvalidResourceId as exc:
            raise InvalidMessage(f"serverId: {exc}") from exc
        try:
            source = Source(body.get("source", Source.EXTERNAL.value))
        except (ValueError, TypeError) as exc:
            raise InvalidMessage(f"unknown source {str(body.get('source'))[:40]!r}") from exc
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
