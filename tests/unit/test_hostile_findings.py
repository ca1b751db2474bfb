"""Each finding of the attacker's probe (issue 11) as a regression test with its exact input, on the pure code."""

from __future__ import annotations

import base64
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from devhost.eventgrid import Reply
from devhost.eventgrid import classify as classify_delivery
from shared.arm.errors import ForeignOriginError
from shared.arm.lro import MAX_RETRY_AFTER_S, PollMode, classify, parse_retry_after, polling_target
from shared.arm.urls import UrlRefused, check_next_link, check_operation_url, check_url, display_url
from shared.backup import datasource_is
from shared.cli import status_table
from shared.config import Settings
from shared.ids import ServerId
from shared.jobqueue import poison_wrapper
from shared.ledger import ServerRecord, State
from shared.messages import InvalidMessage, JobMessage
from shared.safejson import JsonRejected, loads

from .test_ids import GOOD, SUB

ORIGIN = "https://management.azure.com"
OP = f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/MjkxOTM4YQ=="
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.DataProtection/backupVaults/bv-weu"
FOREIGN = "0b352192-dcac-4cc7-992e-a96190ccc68c"
QUEUE_LIMIT = 64 * 1024  # bytes of a queue message once base64-encoded


# -- 4. inputs that crashed ---------------------------------------------------------------------------------


def test_deeply_nested_queue_body_is_rejected_with_a_reason():
    with pytest.raises(InvalidMessage, match="nested deeper"):
        JobMessage.parse("[" * 1000 + "]" * 1000)


def test_a_body_of_quotes_fits_the_poison_queue_once_encoded():
    body = '"' * 40_000
    with pytest.raises(InvalidMessage):
        JobMessage.parse(body)
    wrapped = poison_wrapper(body, "message rejected: 40000 bytes; the limit is 8192")
    assert len(base64.b64encode(wrapped.encode())) <= QUEUE_LIMIT
    entry = json.loads(wrapped)
    assert entry["reason"].startswith("message rejected") and "40000 characters" in entry["truncated"]
    assert entry["message"] == body[: len(entry["message"])]


@given(st.text(max_size=60_000), st.text(max_size=2_000))
@settings(max_examples=60, deadline=None)
def test_any_poison_entry_fits_the_queue(body: str, reason: str):
    assert len(base64.b64encode(poison_wrapper(body, reason).encode())) <= QUEUE_LIMIT


def test_retry_after_with_four_hundred_zeros_is_the_longest_wait():
    headers = {"retry-after": "1" + "0" * 400, "azure-asyncoperation": ORIGIN + OP}
    assert parse_retry_after(headers) == MAX_RETRY_AFTER_S
    target = polling_target(headers)
    assert target is not None and target.retry_after_s == MAX_RETRY_AFTER_S
    result = classify(PollMode.ASYNC_OPERATION, 200, {"status": "InProgress"}, headers, default_retry_after=5)
    assert result.retry_after_s == MAX_RETRY_AFTER_S


@pytest.mark.parametrize("raw", ["99999999999999999999", "Wed, 21 Oct 99999 07:28:00 GMT", "nan", "1e400", "٣"])
def test_odd_retry_after_values_never_raise(raw: str):
    assert 0 <= parse_retry_after({"retry-after": raw}) <= MAX_RETRY_AFTER_S


def test_an_arm_body_of_brackets_is_refused_not_recursed():
    with pytest.raises(JsonRejected, match="nested deeper"):
        loads(b"[" * 100_000, max_bytes=4 * 1024 * 1024)


def test_a_deeply_nested_event_grid_delivery_is_a_400():
    event = {"id": "1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": {}}
    body = json.dumps([event]).replace('"data": {}', '"data": ' + "[" * 5000 + "]" * 5000).encode()
    reply = classify_delivery("POST", {"aeg-event-type": "Notification"}, body)
    assert isinstance(reply, Reply) and reply.status == 400 and "nested deeper" in str(reply.body)


# -- 5. low findings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/%2e%2e",
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/.%2e/.%2e/x/operationStatus/a",
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/\u2025/x",
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/\uff0e\uff0e",
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/a/../../..",
        f"/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/a%2F..%2F..",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/v/backupInstances",
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/x",
    ],
)
def test_operation_urls_must_have_an_operation_shape_after_decoding(path: str):
    with pytest.raises(UrlRefused):
        check_operation_url(ORIGIN + path + "?api-version=2026-06-01", ORIGIN)


@pytest.mark.parametrize(
    "path",
    [
        OP,
        OP.replace("operationStatus", "operationResults"),
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/operationStatus/YWJj%3D",
        f"{VAULT}/operationStatus/YWJj",
        f"{VAULT}/backupInstances/db-1/operationResults/YWJj",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupInstances/db-1/operationResults/YWJj",
    ],
)
def test_operation_urls_of_the_spec_pass(path: str):
    url = ORIGIN + path + "?api-version=2026-06-01"
    assert check_operation_url(url, ORIGIN) == url


def test_next_links_must_continue_their_own_list():
    first = f"{ORIGIN}/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/flexibleServers?api-version=x"
    assert check_next_link(first + "&$skiptoken=5", first, ORIGIN)
    with pytest.raises(UrlRefused, match="leaves the list"):
        check_next_link(f"{ORIGIN}/subscriptions/{SUB}/resourceGroups?api-version=x", first, ORIGIN)


def test_a_refused_url_keeps_only_scheme_host_and_path():
    url = "https://user:pw@evil.example/x/y?sig=abc123&se=2030"
    error = ForeignOriginError(url, "carries credentials")
    assert "sig=" not in error.message and "pw" not in error.message and "user" not in error.message
    assert "https://evil.example/x/y" in error.message
    with pytest.raises(UrlRefused):
        check_url(url, ORIGIN)
    shown = display_url("https://h/p\n\x1b[2Jforged")
    assert "\n" not in shown and "\x1b" not in shown and shown.endswith("\\x1b[2Jforged")


def test_terminal_escapes_in_ledger_text_are_shown_not_obeyed():
    osc8 = "\x1b]8;;https://evil.example\x1b\\click me\x1b]8;;\x1b\\"
    record = ServerRecord(GOOD, State.SKIPPED, reason=f"tag autoprotect={osc8}\x1b[2J\x1b[H")
    out = io.StringIO()
    Console(file=out, width=400, force_terminal=True, color_system=None).print(status_table([record]))
    printed = out.getvalue()
    assert "\x1b]8" not in printed and "\x1b[2J" not in printed and "\x1b[H" not in printed
    assert "\\x1b]8;;https://evil.example" in printed


def test_unknown_field_names_cannot_forge_log_lines():
    body = json.dumps({"version": 1, "kind": "protect", "serverId": GOOD, "x\nERROR forged line": 1})
    with pytest.raises(InvalidMessage) as caught:
        JobMessage.parse(body)
    assert "\n" not in str(caught.value) and "forged" in str(caught.value)


def test_settings_repr_hides_the_webhook_url():
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    loaded = Settings.from_env(
        {
            "AUTOPROTECT_DEFAULT_VAULT_ID": VAULT,
            "AUTOPROTECT_DEFAULT_POLICY_ID": VAULT + "/backupPolicies/pg",
            "AUTOPROTECT_SUBSCRIPTIONS": SUB,
            "AUTOPROTECT_NOTIFY_WEBHOOK_URL": secret,
        }
    )
    assert loaded.notify_webhook_url == secret
    assert "XXXXSECRET" not in repr(loaded) and "hooks.slack.com" not in repr(loaded)


def test_an_instance_is_checked_against_its_server_before_a_write():
    server = ServerId.parse(GOOD)
    mine = {"properties": {"dataSourceInfo": {"resourceID": GOOD.upper()}}}
    other = {"properties": {"dataSourceInfo": {"resourceID": GOOD[:-1] + "x"}}}
    assert datasource_is(mine, server)
    assert not datasource_is(other, server)
    assert not datasource_is({"properties": {"dataSourceInfo": {"resourceID": ["x"]}}}, server)
    assert not datasource_is("not an instance", server)


# -- 1 and 3. the queue asks for protection only; the scope is closed -------------------------------------------


def test_the_retired_unprotect_kind_is_refused_with_what_to_do_instead():
    body = json.dumps(
        {"version": 1, "kind": "unprotect", "serverId": GOOD, "source": "manual", "reason": "requested with the CLI"}
    )
    with pytest.raises(InvalidMessage, match=r"no longer accepted.*autoprotect unprotect"):
        JobMessage.parse(body)


def test_an_empty_allow_list_fails_closed():
    base = {"AUTOPROTECT_DEFAULT_VAULT_ID": VAULT, "AUTOPROTECT_DEFAULT_POLICY_ID": VAULT + "/backupPolicies/pg"}
    with pytest.raises(ValueError, match="AUTOPROTECT_SUBSCRIPTIONS is empty"):
        Settings.from_env(base)
    closed = Settings.from_env({**base, "AUTOPROTECT_SUBSCRIPTIONS": SUB})
    assert closed.scope_error(SUB) is None
    assert closed.scope_error(FOREIGN) is not None
    opened = Settings.from_env({**base, "AUTOPROTECT_ANY_SUBSCRIPTION": "true"})
    assert opened.scope_error(FOREIGN) is None
    assert opened.subscriptions_in_scope() == []
