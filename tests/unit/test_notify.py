"""Webhook notifications: the incident decision, the three payload shapes, and delivery to a real local receiver."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ledger import ServerRecord, State, format_time
from shared.notify import (
    SETTING_FORMAT,
    SETTING_URL,
    Incident,
    Notifier,
    NotifyFormat,
    build_payload,
    check_webhook_url,
    from_settings,
    incident_key,
    incident_of,
    is_incident,
    pending_incident,
)

from .test_report import NOW, server_id

SECRET_PATH = "/services/T000/B000/s3cr3t-token"
PHISH = "[Re-authorize here](https://evil.example)"
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def failed(
    name: str = "orders-db", *, code: str = "UserErrorMissingRequiredPermissions", minutes: int = 0
) -> ServerRecord:
    """A record as the flow leaves it in NeedsAttention, `minutes` after NOW."""
    record = ServerRecord(server_id=server_id(name), state=State.VALIDATING, first_seen_at=format_time(NOW))
    record.set_error(code, "The vault's identity lacks <!channel> *Reader* on the server", "Assign the role.")
    record.move(State.NEEDS_ATTENTION, NOW + timedelta(minutes=minutes), reason="permissions did not propagate")
    return record


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body = b"ok"
        self.location = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(self.rfile.read(length))}
                )
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{SECRET_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def paths(self) -> list[str]:
        return [request["path"] for request in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


class Sent:
    """The ledger's side of the seam, in memory: the keys already claimed."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def already_sent(self, key: str) -> bool:
        return key in self.keys

    def mark_sent(self, key: str) -> None:
        self.keys.add(key)


# -- the decision ---------------------------------------------------------------------------------------------


def test_needs_attention_is_an_incident_and_other_final_states_are_not():
    assert is_incident(failed())
    for state in (State.PROTECTED, State.PROTECTED_ELSEWHERE, State.SKIPPED, State.GONE, State.QUEUED):
        record = ServerRecord(server_id=server_id("a-db"), state=state)
        assert not is_incident(record), state


def test_broken_protection_is_an_incident_only_with_an_error():
    record = ServerRecord(server_id=server_id("a-db"), state=State.CONFIGURING)
    assert not is_incident(record, State.PROTECTED)  # a manual re-check
    record.set_error("ProtectionError", "the instance is in ProtectionError")
    assert is_incident(record, State.PROTECTED)
    assert not is_incident(record, State.CONFIGURING)


def stopped(previous: State = State.PROTECTED) -> ServerRecord:
    """A record that was `previous` and has just had its protection stopped (no error: an operator did it)."""
    record = ServerRecord(server_id=server_id("orders-db"), state=previous, first_seen_at=format_time(NOW))
    record.move(State.UNPROTECTED, NOW + timedelta(minutes=5), reason="backup instance orders-db deleted")
    return record


def test_protection_stopped_is_an_incident_with_its_own_title():
    record = stopped()
    assert is_incident(record, State.PROTECTED)
    assert is_incident(record, State.UNPROTECTING) and is_incident(record)  # by any path, error or not
    incident = incident_of(record, State.PROTECTED)
    assert incident is not None
    assert incident.title == "autoprotect: orders-db protection was stopped"
    assert incident_of(failed()).title == "autoprotect: orders-db needs attention"  # type: ignore[union-attr]


def test_staying_unprotected_is_not_an_incident():
    assert not is_incident(stopped(), State.UNPROTECTED)
    assert pending_incident(stopped(), State.UNPROTECTED, sent_key="") is None


def test_protection_stopped_is_sent_once():
    incident = pending_incident(stopped(), State.PROTECTED, sent_key="")
    assert incident is not None
    assert incident.key == incident_key(stopped())  # stable across re-reads of the same entry
    assert pending_incident(stopped(), State.PROTECTED, sent_key=incident.key) is None


def test_incident_key_changes_with_a_new_incident_not_with_a_reread():
    first = failed()
    assert incident_key(first) == incident_key(failed())
    key = incident_key(first)
    assert key.startswith(server_id("orders-db").lower() + "|NeedsAttention|UserErrorMissingRequiredPermissions|")
    assert incident_key(failed(code="OtherError")) != key
    # Retried, failed again later: the state was re-entered at a new time.
    again = failed()
    again.move(State.QUEUED, NOW + timedelta(minutes=1), reason="submitted")
    again.move(State.NEEDS_ATTENTION, NOW + timedelta(minutes=30), reason="failed again")
    assert incident_key(again) != key


def test_pending_incident_compares_with_the_last_key_sent():
    record = failed()
    incident = pending_incident(record, State.VALIDATING, sent_key="")
    assert incident is not None and incident.key == incident_key(record)
    assert pending_incident(record, State.VALIDATING, sent_key=incident.key) is None
    record.move(State.QUEUED, NOW + timedelta(minutes=1), reason="submitted")
    assert pending_incident(record, State.NEEDS_ATTENTION, sent_key=incident.key) is None
    record.move(State.NEEDS_ATTENTION, NOW + timedelta(minutes=9), reason="failed again")
    assert pending_incident(record, State.QUEUED, sent_key=incident.key) is not None


def test_dedupe_decision_needs_no_storage_or_network():
    class NoNetwork(requests.Session):
        def post(self, *args: Any, **kwargs: Any) -> requests.Response:
            response = requests.Response()
            response.status_code = 200
            response.raw = io.BytesIO(b"ok")
            return response

    notifier = Notifier("https://hooks.example.invalid/x", session=NoNetwork())
    sent = Sent()
    outcomes = [notifier.notify(failed(), already_sent=sent.already_sent, mark_sent=sent.mark_sent) for _ in range(3)]
    assert [o.sent for o in outcomes] == [True, False, False]
    assert outcomes[1].reason == "already sent"
    assert sent.keys == {incident_key(failed())}
    quiet = ServerRecord(server_id=server_id("b-db"), state=State.PROTECTED)
    assert notifier.notify(quiet, already_sent=sent.already_sent, mark_sent=sent.mark_sent).reason == "not an incident"


def test_a_lost_claim_sends_nothing():
    def lost(key: str) -> None:
        raise RuntimeError("ConcurrentUpdate")

    class Forbidden(requests.Session):
        def post(self, *args: Any, **kwargs: Any) -> requests.Response:
            raise AssertionError("must not post")

    notifier = Notifier("https://hooks.example.invalid/x", session=Forbidden())
    result = notifier.notify(failed(), already_sent=lambda key: False, mark_sent=lost)
    assert (result.sent, result.reason) == (False, "not claimed: RuntimeError")


# -- payloads -------------------------------------------------------------------------------------------------


def test_plain_json_payload():
    incident = incident_of(failed())
    assert incident is not None
    payload = build_payload(incident, "json")
    assert payload["serverId"] == server_id("orders-db")
    assert payload["name"] == "orders-db" and payload["resourceGroup"] == "rg-app"
    assert payload["state"] == "NeedsAttention"
    assert payload["errorCode"] == "UserErrorMissingRequiredPermissions"
    assert "<!channel>" in payload["errorMessage"]
    assert payload["recommendedAction"] == "Assign the role."
    assert payload["since"] == "2026-11-26T12:00:00Z"
    assert payload["incidentKey"] == incident_key(failed())
    json.dumps(payload)


def test_slack_payload_has_fallback_text_and_blocks_and_escapes_mentions():
    incident = incident_of(failed())
    assert incident is not None
    payload = build_payload(incident, NotifyFormat.SLACK)
    assert set(payload) == {"text", "blocks"}
    assert "orders-db needs attention" in payload["text"]
    assert [block["type"] for block in payload["blocks"]] == ["header", "section", "section", "section", "context"]
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": "autoprotect: orders-db needs attention"}
    assert len(payload["blocks"][1]["fields"]) == 4
    text = json.dumps(payload)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "Assign the role." in payload["blocks"][3]["text"]["text"]


def test_slack_payload_respects_block_kit_limits():
    record = failed()
    record.set_error("C" * 300, "m" * 5000, "a" * 5000)
    incident = incident_of(record)
    assert incident is not None
    payload = build_payload(incident, "slack")
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    for block in payload["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
    assert len(payload["text"]) <= 3000


def test_teams_payload_is_an_adaptive_card_message():
    incident = incident_of(failed())
    assert incident is not None
    payload = build_payload(incident, "teams")
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.2"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    kinds = [element["type"] for element in card["body"]]
    assert kinds[:2] == ["TextBlock", "FactSet"]
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert facts["Server"] == "rg\\-app/orders\\-db"  # Markdown-escaped, renders as rg-app/orders-db
    assert facts["Error code"] == "UserErrorMissingRequiredPermissions"
    texts = [element.get("text") for element in card["body"]]
    assert "Recommended action" in texts and "Assign the role." in texts


def test_teams_renders_a_markdown_link_in_ledger_text_literally():
    record = failed()
    record.set_error(PHISH, PHISH, PHISH)
    record.reason = PHISH
    incident = incident_of(record)
    assert incident is not None
    payload = build_payload(incident, "teams")
    card = json.dumps(payload["attachments"][0]["content"])
    assert "](" not in card
    assert "https://evil.example" not in json.dumps(payload)  # neither in the card nor in the summary
    texts = [element.get("text") for element in payload["attachments"][0]["content"]["body"]]
    assert "\\[Re\\-authorize here\\]\\(https\\[:\\]//evil\\[.\\]example\\)" in texts
    assert payload["summary"].startswith("autoprotect: orders-db needs attention. [Re-authorize here](https[:]//")
    assert len(payload["summary"]) <= 200


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("1. Click https://evil.example", "1\\. Click https\\[:\\]//evil\\[.\\]example"),
        ("see www.evil.com now", "see www\\[.\\]evil\\[.\\]com now"),
        ("**bold** _it_ ~x~ # h > q | t !x `c` +l {{DATE(x)}}", None),
        ("a\\b", "a\\\\b"),
    ],
)
def test_teams_escapes_markdown_and_defangs_urls(text: str, shown: str | None):
    record = failed()
    record.set_error("Code", text)
    incident = incident_of(record)
    assert incident is not None
    message = build_payload(incident, "teams")["attachments"][0]["content"]["body"][2]["text"]
    if shown is not None:
        assert message == shown
    assert not re.search(r"(?<!\\)[*_\[\]()#+!`~>|{}-]", message.replace("\\\\", ""))  # all escaped


def test_slack_code_spans_cannot_be_closed_by_ledger_text():
    record = ServerRecord(server_id=server_id("orders-db`*x*"), state=State.VALIDATING)
    record.set_error("Bad`Code` <!here>", "message")
    record.move(State.NEEDS_ATTENTION, NOW)
    incident = incident_of(record)
    assert incident is not None
    payload = build_payload(incident, "slack")
    error = payload["blocks"][2]["text"]["text"]
    assert error.startswith("*Error* `Bad\u02cbCode\u02cb &lt;!here&gt;`\n")
    context = payload["blocks"][-1]["elements"][0]["text"]
    assert context == f"`{server_id('orders-db')}\u02cb*x*`"
    assert context.count("`") == 2 and error.count("`") == 2


@pytest.mark.parametrize("fmt", list(NotifyFormat))
def test_control_characters_are_removed_from_every_format(fmt: NotifyFormat):
    record = failed()
    forged = "denied\n2026-11-26 INFO all servers protected\x1b[2K\r\x00\x7f\x9b"
    record.set_error("Code\x1b[31m", forged, forged)
    record.reason = forged
    incident = incident_of(record)
    assert incident is not None
    payload = build_payload(incident, fmt)
    for value in strings(payload):
        assert not CONTROLS.search(value.replace("\n", "") if fmt is NotifyFormat.SLACK else value), value
    if fmt is NotifyFormat.JSON:
        assert payload["errorMessage"] == "denied 2026-11-26 INFO all servers protected[2K "  # \r: a space
        assert payload["errorCode"] == "Code[31m"
        assert incident.error_message == forged  # only the payload is cleaned; the incident keeps the ledger text


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# Any text (lone surrogates and control characters included), text built from the fragments that hurt, and
# some that parses as a server ID.
_HOSTILE = ["\ud800", "\x00", "\n", "\x1b[2K", "\x9b", "`", "[x](", "https://", "a.b", "<!here>", "1. ", "\\", "{{"]
_ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=300),
    st.lists(st.sampled_from(_HOSTILE), max_size=12).map("".join),
)
_FIELDS = {item.name: _ANY_TEXT for item in dataclasses.fields(Incident) if item.name not in ("server_id", "state")}


@settings(max_examples=200, deadline=None)
@given(
    fmt=st.sampled_from(list(NotifyFormat)),
    server=st.one_of(_ANY_TEXT, _ANY_TEXT.map(server_id)),
    state=st.one_of(st.sampled_from([state.value for state in State]), _ANY_TEXT),
    values=st.fixed_dictionaries(_FIELDS),
)
def test_build_payload_never_raises_and_is_always_json(
    fmt: NotifyFormat, server: str, state: str, values: dict[str, str]
):
    payload = build_payload(Incident(server_id=server, state=state, **values), fmt)
    json.dumps(payload, ensure_ascii=False).encode("utf-8")  # what Notifier.send posts
    assert json.loads(json.dumps(payload)) == payload
    structural = "\n" if fmt is NotifyFormat.SLACK else ""  # Slack's own line breaks between label and value
    assert not any(
        CONTROLS.search(value.replace(structural, "") if structural else value) for value in strings(payload)
    )


def test_unknown_format_is_a_configuration_error():
    with pytest.raises(ValueError, match="xml"):
        Notifier("https://hooks.example.invalid/x", "xml")


# -- URLs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.slack.com/services/x", None),
        ("https://contoso.webhook.office.com/webhookb2/x", None),
        ("http://127.0.0.1:8080/hook", None),
        ("http://localhost/hook", None),
        ("http://[::1]:9/hook", None),
        ("http://hooks.slack.com/services/x", "http is allowed only for localhost"),
        ("http://127.0.0.2/hook", "http is allowed only for localhost"),
        ("http://localhost.evil.example/hook", "http is allowed only for localhost"),
        ("ftp://example.com/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https:///nohost", "no host"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("", "scheme '(none)'"),
    ],
)
def test_check_webhook_url(url, problem):
    found = check_webhook_url(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_from_settings():
    assert from_settings({}) is None
    assert from_settings({SETTING_URL: "  "}) is None
    notifier = from_settings({SETTING_URL: "https://hooks.slack.com/services/x", SETTING_FORMAT: "Slack"})
    assert notifier is not None and notifier.format is NotifyFormat.SLACK
    assert "services" not in repr(notifier)  # the path is the secret


# -- delivery to a real receiver ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "slack", "teams"])
def test_exactly_one_post_per_incident(receiver: Receiver, fmt: str):
    notifier = Notifier(receiver.url, fmt)
    sent = Sent()
    results = [notifier.notify(failed(), already_sent=sent.already_sent, mark_sent=sent.mark_sent) for _ in range(4)]
    assert [r.sent for r in results] == [True, False, False, False]
    assert results[0].status == 200
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["body"] == build_payload(incident_of(failed()), fmt)  # type: ignore[arg-type]

    # A new incident (failed again after a retry) is one more POST, also only once.
    again = failed()
    again.move(State.QUEUED, NOW + timedelta(minutes=1), reason="submitted")
    again.move(State.NEEDS_ATTENTION, NOW + timedelta(minutes=40), reason="failed again")
    for _ in range(3):
        notifier.notify(again, already_sent=sent.already_sent, mark_sent=sent.mark_sent)
    assert len(receiver.requests) == 2
    assert len(sent.keys) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@127.0.0.1:{port}/hook",
        "ftp://127.0.0.1:{port}/hook",
        "file:///tmp/hook",
    ],
)
def test_refused_urls_are_not_contacted_and_nothing_is_marked(receiver: Receiver, url: str):
    notifier = Notifier(url.format(port=receiver.port), "json")
    sent = Sent()
    result = notifier.notify(failed(), already_sent=sent.already_sent, mark_sent=sent.mark_sent)
    assert not result.sent and result.reason.startswith("webhook URL refused")
    assert receiver.requests == [] and sent.keys == set()


def test_a_plain_http_url_elsewhere_is_refused_before_any_connection():
    class Forbidden(requests.Session):
        def post(self, *args: Any, **kwargs: Any) -> requests.Response:
            raise AssertionError("must not post")

    notifier = Notifier("http://hooks.slack.com/services/x", "slack", session=Forbidden())
    incident = incident_of(failed())
    assert incident is not None
    assert notifier.send(incident).reason.startswith("webhook URL refused: http is allowed only for localhost")


def test_redirects_are_not_followed(receiver: Receiver):
    receiver.status = 302
    receiver.location = f"http://127.0.0.1:{receiver.port}/elsewhere"
    result = Notifier(receiver.url).notify(failed(), already_sent=lambda key: False, mark_sent=lambda key: None)
    assert (result.sent, result.status) == (False, 302)
    assert "redirect not followed" in result.reason
    assert receiver.paths() == [SECRET_PATH]


def test_http_errors_and_teams_throttling_are_returned_not_raised(receiver: Receiver):
    notifier = Notifier(receiver.url, "teams")
    incident = incident_of(failed())
    assert incident is not None
    receiver.status = 500
    assert notifier.send(incident).reason == "HTTP 500"
    receiver.status, receiver.body = 200, b"Microsoft Teams endpoint returned HTTP error 429 with ContextId ..."
    result = notifier.send(incident)
    assert not result.sent and "throttled" in result.reason


def test_an_unreachable_receiver_is_reported_without_the_url(caplog: pytest.LogCaptureFixture):
    receiver = Receiver()  # bound but never serving, then closed: the port refuses connections
    url = receiver.url
    receiver.server.server_close()
    incident = incident_of(failed())
    assert incident is not None
    with caplog.at_level(logging.INFO, logger="autoprotect.notify"):
        result = Notifier(url, timeout=(1.0, 1.0)).send(incident)
    assert not result.sent and result.reason == "request failed: ConnectionError"
    assert SECRET_PATH not in result.reason
    assert caplog.records and all("s3cr3t" not in record.getMessage() for record in caplog.records)
    assert "127.0.0.1" in caplog.text


def test_a_failing_seam_never_raises_into_the_caller():
    def broken(key: str) -> bool:
        raise OSError("table unavailable")

    notifier = Notifier("https://hooks.example.invalid/x")
    result = notifier.notify(failed(), already_sent=broken, mark_sent=lambda key: None)
    assert (result.sent, result.reason) == (False, "not claimed: OSError")


def test_a_sweep_retry_that_fails_the_same_way_is_not_told_again():
    first = failed()
    sent = pending_incident(first, State.VALIDATING, "")
    assert sent is not None
    again = failed(minutes=90)  # re-entered NeedsAttention after the sweep's retry, same code
    again.attention_retries = 1
    assert pending_incident(again, State.QUEUED, sent.key) is None
    other = failed(code="UserErrorMSIMissingPermissions", minutes=90)
    other.attention_retries = 1
    assert pending_incident(other, State.QUEUED, sent.key) is not None  # a new problem is news
    fresh = failed(minutes=90)  # no sweep retry: a new failure after, say, a manual submit is told
    assert pending_incident(fresh, State.QUEUED, sent.key) is not None
