"""Optional webhook notifications: a person hears about a server that needs attention once, not never or twice.

The decision (is this an incident, which one, was it sent) is pure and separate from the one HTTP POST, so it
can be tested without storage or network, and so the caller can put the "sent" mark in the same ETag-conditional
ledger write that records the state: of two instances racing on the same transition only the one whose write
wins sends. Delivery is therefore at most once per incident; a failed POST is logged and returned, never
retried or raised, because a notification must never break or slow the protection flow it reports on.

The webhook URL is a bearer secret (Slack and Teams put the credential in the path), so it is never logged,
never put in a payload or an exception, and only its host appears in results.

Ledger text (ARM error messages, recommended actions, reasons) is attacker-influenced: whoever can make a
deployment fail chooses it. Every format therefore drops control characters from it, and the chat formats
neutralise their own markup, so the message cannot forge log lines, links, mentions or formatting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests

from shared.ids import InvalidResourceId, ServerId
from shared.ledger import ServerRecord, State, parse_time

logger = logging.getLogger("autoprotect.notify")

SETTING_URL = "AUTOPROTECT_NOTIFY_WEBHOOK_URL"
SETTING_FORMAT = "AUTOPROTECT_NOTIFY_FORMAT"

# Plain http is accepted only for a receiver on this machine (tests, a local relay); anything else carries the
# webhook secret and the error text in clear.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Slack's documented Block Kit limits; longer text makes the whole message fail with invalid_blocks.
_SLACK_HEADER = 150
_SLACK_TEXT = 2900
_SLACK_FIELD = 1900
_MESSAGE_LIMIT = 2000
_TEAMS_SUMMARY = 200
_USER_AGENT = "autoprotect-notify/1"

# Line breaks and tabs (C0, NEL, U+2028/9) become one space, so words stay apart; every other C0/DEL/C1 control,
# and a lone surrogate (which cannot be encoded as UTF-8 and would fail the POST), is dropped.
_BREAKS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# What Adaptive Card TextBlocks (and FactSet values) would render as Markdown, or as a {{DATE()}} function.
_TEAMS_SPECIAL = re.compile(r"([\\*_\[\]()#\-+!`~>|{}])")
_TEAMS_ORDERED = re.compile(r"^(\d+)\.", re.MULTILINE)
# A dot between a word character and a letter: the shape of every host name (evil.example, www.x.com).
_HOST_DOT = re.compile(r"(?<=\w)\.(?=[^\W\d_])")
# Slack has no escape inside a code span, so a backtick is swapped for the modifier letter grave accent.
_BACKTICK_LOOKALIKE = "\u02cb"


class NotifyFormat(StrEnum):
    JSON = "json"
    TEAMS = "teams"
    SLACK = "slack"


def check_webhook_url(url: str) -> str | None:
    """Why `url` may not be used as a webhook, or None; config validation can call it to fail at startup."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("https", "http"):
        return f"scheme {parts.scheme or '(none)'!r} is not allowed; use https"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed"
    if not host:
        return "no host"
    if parts.scheme == "http" and not _is_local(host):
        return "http is allowed only for localhost; use https"
    return None


def _is_local(host: str) -> bool:
    if host.lower() in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address("127.0.0.1")
    except ValueError:
        return False


# -- the decision ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """What one notification says; every field is copied from the ledger record, nothing else."""

    key: str
    server_id: str
    state: str
    previous_state: str
    error_code: str
    error_message: str
    recommended_action: str
    reason: str
    entered_at: str

    @property
    def title(self) -> str:
        if self.state == State.UNPROTECTED.value:
            what = "protection was stopped"
        elif self.state == State.NEEDS_ATTENTION.value:
            what = "needs attention"
        else:
            what = "is no longer protected"
        return f"autoprotect: {_display_name(self.server_id)} {what}"


def entered_at(record: ServerRecord) -> str:
    """When the record entered its current state: the moment that tells one incident from the next."""
    return record.transitions.get(record.state.value) or record.state_changed_at


def incident_key(record: ServerRecord) -> str:
    """Server, state, error code and the time the state was entered: a new failure after a retry is a new key.

    Plain text of at most ~800 characters, fit to be stored as a ledger property.
    """
    return "|".join((record.server_id.lower(), record.state.value, record.error_code, entered_at(record)))


def is_incident(record: ServerRecord, previous: State | None = None) -> bool:
    """NeedsAttention; Unprotected, just entered; or a server that was Protected and now is not, with an error.

    Protection being stopped is always worth telling, by whatever path (the operator's CLI or any other), with
    an error or without; staying Unprotected is not news. Leaving Protected for another state without an
    error (a manual re-check, a deletion, an opt-out) is not an incident.
    """
    if record.state == State.NEEDS_ATTENTION:
        return True
    if record.state == State.UNPROTECTED:
        return previous != State.UNPROTECTED
    return previous == State.PROTECTED and record.state != State.PROTECTED and bool(record.error_code)


def incident_of(record: ServerRecord, previous: State | None = None) -> Incident | None:
    if not is_incident(record, previous):
        return None
    return Incident(
        key=incident_key(record),
        server_id=record.server_id,
        state=record.state.value,
        previous_state=previous.value if previous else "",
        error_code=record.error_code,
        error_message=record.error_message[:_MESSAGE_LIMIT],
        recommended_action=record.error_action[:_MESSAGE_LIMIT],
        reason=record.reason[:_MESSAGE_LIMIT],
        entered_at=entered_at(record),
    )


def pending_incident(record: ServerRecord, previous: State | None, sent_key: str) -> Incident | None:
    """The incident to send now, given the key last sent for this server (as the ledger keeps it), or None.

    Keys of one server only ever move forward (the state-entered time is part of them), so remembering the last
    key sent is enough to send each incident once.
    """
    incident = incident_of(record, previous)
    if incident is None or incident.key == sent_key:
        return None
    if record.attention_retries and _same_problem(incident.key, sent_key):
        return None  # the sweep's retry of an open incident failed the same way: already told
    return incident


def _same_problem(key: str, sent_key: str) -> bool:
    """Same server, state and error code (keys differ only in when the state was entered)."""
    return key.rsplit("|", 1)[0] == sent_key.rsplit("|", 1)[0]


# -- payloads -------------------------------------------------------------------------------------------------


def build_payload(incident: Incident, fmt: NotifyFormat | str) -> dict[str, Any]:
    """The JSON body for `fmt`; control characters are removed from every field first, whatever the format."""
    fmt = NotifyFormat(fmt)
    incident = _without_controls(incident)
    if fmt is NotifyFormat.SLACK:
        return _slack(incident)
    if fmt is NotifyFormat.TEAMS:
        return _teams(incident)
    return _plain(incident)


def _without_controls(incident: Incident) -> Incident:
    """A copy whose every field is `_clean`: a newline or ANSI escape in ARM text forges no receiver log line."""
    changes = {item.name: _clean(getattr(incident, item.name)) for item in dataclasses.fields(incident)}
    return dataclasses.replace(incident, **changes)


def _clean(text: str) -> str:
    return _CONTROLS.sub("", _BREAKS.sub(" ", text))


def _plain(incident: Incident) -> dict[str, Any]:
    """Data for a program: values are left as they are (no markup to neutralise), only without controls."""
    subscription, resource_group, name = _parts(incident.server_id)
    return {
        "source": "autoprotect",
        "version": 1,
        "kind": "incident",
        "incidentKey": incident.key,
        "serverId": incident.server_id,
        "subscription": subscription,
        "resourceGroup": resource_group,
        "name": name,
        "state": incident.state,
        "previousState": incident.previous_state,
        "since": _when(incident.entered_at),
        "reason": incident.reason,
        "errorCode": incident.error_code,
        "errorMessage": incident.error_message,
        "recommendedAction": incident.recommended_action,
        "text": _summary(incident),
    }


def _slack(incident: Incident) -> dict[str, Any]:
    """Block Kit with a plain fallback `text`; ledger text is escaped so `<!channel>` in an error pings nobody."""
    subscription, resource_group, name = _parts(incident.server_id)
    error = f"*Error* {_slack_code(incident.error_code or 'none recorded')}"
    if incident.error_message:
        error += f"\n{_slack_escape(incident.error_message)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(incident.title, _SLACK_HEADER)}},
        {
            "type": "section",
            "fields": [
                _slack_field("Server", f"{resource_group}/{name}"),
                _slack_field("State", incident.state),
                _slack_field("Subscription", subscription),
                _slack_field("Since", _when(incident.entered_at)),
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(error, _SLACK_TEXT)}},
    ]
    if incident.recommended_action:
        action = f"*Recommended action*\n{_slack_escape(incident.recommended_action)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(action, _SLACK_TEXT)}})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _cut(_slack_code(incident.server_id), _SLACK_TEXT)}],
        }
    )
    return {"text": _cut(_slack_escape(_summary(incident)), _SLACK_TEXT), "blocks": blocks}


def _slack_field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_slack_escape(value)}", _SLACK_FIELD)}


def _slack_escape(text: str) -> str:
    """Slack's three special characters as entities, so `<!channel>` or `<https://x|y>` stay text.

    Emphasis (`*`, `_`, `~`) is left alone: it cannot form a link or a mention, and it cannot reach past the
    one block its text is in.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_code(text: str) -> str:
    """`text` as one code span; a backtick in it would close the span early and Slack has no escape for it."""
    return f"`{_slack_escape(text.replace('`', _BACKTICK_LOOKALIKE))}`"


def _teams(incident: Incident) -> dict[str, Any]:
    """An Adaptive Card in the message envelope that both Teams Incoming Webhooks and Workflows webhooks accept.

    Office 365 connector MessageCards are being retired with the connectors; the envelope below is the shape the
    Teams documentation gives for incoming webhooks, and the one the "post to a channel when a webhook request
    is received" workflow expects.
    """
    subscription, resource_group, name = _parts(incident.server_id)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _teams_text(incident.title),
            "size": "Medium",
            "weight": "Bolder",
            "color": "Attention",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Server", "value": _teams_text(f"{resource_group}/{name}")},
                {"title": "Subscription", "value": _teams_text(subscription)},
                {"title": "State", "value": _teams_text(incident.state)},
                {"title": "Since", "value": _teams_text(_when(incident.entered_at))},
                {"title": "Error code", "value": _teams_text(incident.error_code or "none recorded")},
            ],
        },
    ]
    if incident.error_message:
        body.append({"type": "TextBlock", "text": _teams_text(incident.error_message), "wrap": True})
    if incident.recommended_action:
        body.append({"type": "TextBlock", "text": "Recommended action", "weight": "Bolder", "wrap": True})
        body.append({"type": "TextBlock", "text": _teams_text(incident.recommended_action), "wrap": True})
    server = _teams_text(incident.server_id)
    body.append({"type": "TextBlock", "text": server, "isSubtle": True, "size": "Small", "wrap": True})
    return {
        "type": "message",
        "summary": _cut(_defang(_summary(incident)), _TEAMS_SUMMARY),
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": body,
                    "msteams": {"width": "Full"},
                },
            }
        ],
    }


def _teams_text(text: str) -> str:
    """Ledger text that a TextBlock or FactSet value shows literally: no link, no emphasis, no list, no heading.

    URLs are defanged first, the way threat reports write them: `://` becomes `[:]//` and a dot inside a host
    name becomes `[.]` (`https[:]//evil[.]example`), so neither a Markdown link nor Teams' auto-linking of bare
    URLs and domains has a target to open. Then every character the Markdown subset (or a {{DATE()}} function)
    gives a meaning is backslash-escaped, as is the dot of a numbered-list start such as `1.`.
    """
    escaped = _TEAMS_SPECIAL.sub(r"\\\1", _defang(text))
    return _TEAMS_ORDERED.sub(r"\1\\.", escaped)


def _defang(text: str) -> str:
    return _HOST_DOT.sub("[.]", text.replace("://", "[:]//"))


def _summary(incident: Incident) -> str:
    parts = [incident.title]
    if incident.error_code:
        parts.append(f"{incident.error_code}: {incident.error_message}".rstrip(": "))
    elif incident.reason:
        parts.append(incident.reason)
    if incident.recommended_action:
        parts.append(f"Recommended action: {incident.recommended_action}")
    return ". ".join(parts)


def _parts(server_id: str) -> tuple[str, str, str]:
    try:
        server = ServerId.parse(server_id)
    except InvalidResourceId:
        return "", "", server_id
    return server.subscription_id, server.resource_group, server.name


def _display_name(server_id: str) -> str:
    return _parts(server_id)[2] or server_id


def _when(stamp: str) -> str:
    parsed = parse_time(stamp)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else stamp


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- delivery -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyResult:
    """The outcome, for the caller's log line; `reason` never contains the URL or a response body."""

    sent: bool
    reason: str
    key: str = ""
    status: int | None = None


class Notifier:
    """Posts incidents to one webhook; thread-safe when the session is (a fresh `requests.Session` is not shared)."""

    def __init__(
        self,
        url: str,
        fmt: NotifyFormat | str = NotifyFormat.JSON,
        *,
        timeout: tuple[float, float] = (3.05, 5.0),
        session: requests.Session | None = None,
    ) -> None:
        self.format = NotifyFormat(fmt)  # ValueError on an unknown format: a configuration error, loud at startup
        self._url = url
        self._refusal = check_webhook_url(url)
        self._host = _safe_host(url)
        self._timeout = timeout
        self._session = session

    def __repr__(self) -> str:
        return f"Notifier(host={self._host!r}, format={self.format.value!r})"

    @property
    def host(self) -> str:
        return self._host

    incident_key = staticmethod(incident_key)
    is_incident = staticmethod(is_incident)

    def notify(
        self,
        record: ServerRecord,
        *,
        already_sent: Callable[[str], bool],
        mark_sent: Callable[[str], None],
        previous: State | None = None,
    ) -> NotifyResult:
        """Send the record's incident unless it was sent before; never raises.

        `mark_sent` is called before the POST and is the claim: if it raises (another instance stored the key
        first, e.g. the ledger's ConcurrentUpdate) nothing is sent.
        """
        incident = incident_of(record, previous)
        if incident is None:
            return NotifyResult(False, "not an incident")
        if self._refusal:
            return self._log(incident, NotifyResult(False, f"webhook URL refused: {self._refusal}", incident.key))
        try:
            if already_sent(incident.key):
                return NotifyResult(False, "already sent", incident.key)
            mark_sent(incident.key)
        except Exception as exc:
            return self._log(incident, NotifyResult(False, f"not claimed: {type(exc).__name__}", incident.key))
        return self.send(incident)

    def send(self, incident: Incident) -> NotifyResult:
        """One POST, no dedupe; for callers that claimed the incident themselves. Never raises."""
        if self._refusal:
            return self._log(incident, NotifyResult(False, f"webhook URL refused: {self._refusal}", incident.key))
        try:
            body = json.dumps(build_payload(incident, self.format), ensure_ascii=False).encode()
            result = self._post(body, incident.key)
        except Exception as exc:  # a notification must never break the flow that triggered it
            result = NotifyResult(False, f"failed: {type(exc).__name__}", incident.key)
        return self._log(incident, result)

    def _post(self, body: bytes, key: str) -> NotifyResult:
        session = self._session or requests.Session()
        try:
            return self._exchange(session, body, key)
        finally:
            if self._session is None:
                session.close()

    def _exchange(self, session: requests.Session, body: bytes, key: str) -> NotifyResult:
        try:
            response = session.post(
                self._url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": _USER_AGENT},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            # The exception text holds the URL, and so the secret: only its type is kept.
            return NotifyResult(False, f"request failed: {type(exc).__name__}", key)
        with response:
            status = response.status_code
            try:
                head = response.raw.read(512, decode_content=True) if response.raw is not None else b""
            except Exception:  # the status is the answer; an unreadable body must not turn it into a failure
                head = b""
        if 300 <= status < 400:
            return NotifyResult(False, f"redirect not followed (HTTP {status})", key, status)
        if not 200 <= status < 300:
            return NotifyResult(False, f"HTTP {status}", key, status)
        # Teams connectors report throttling as a 200 whose body names the 429.
        if b"HTTP error 429" in (head or b""):
            return NotifyResult(False, "throttled by the receiver (429 in body)", key, status)
        return NotifyResult(True, f"HTTP {status}", key, status)

    def _log(self, incident: Incident, result: NotifyResult) -> NotifyResult:
        level = logging.INFO if result.sent else logging.WARNING
        logger.log(
            level,
            "notification for %s (%s %s) to %s: %s",
            incident.server_id,
            incident.state,
            incident.error_code or "-",
            self._host,
            "sent" if result.sent else f"not sent, {result.reason}",
        )
        return result


def _safe_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "(no host)"
    except ValueError:
        return "(invalid URL)"


def from_settings(env: Mapping[str, str]) -> Notifier | None:
    """The notifier the settings ask for, or None when no webhook is configured (notifications are optional)."""
    url = (env.get(SETTING_URL) or "").strip()
    if not url:
        return None
    return Notifier(url, (env.get(SETTING_FORMAT) or NotifyFormat.JSON.value).strip().lower())
