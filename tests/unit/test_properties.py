"""Property-based tests: hostile or malformed input never escapes as an unexpected exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.arm.client import ArmClient
from shared.arm.errors import ArmError, ForeignOriginError
from shared.arm.lro import PollMode, classify, parse_retry_after, polling_target
from shared.events import Ignored, ResourceEvent, ServerWritten, interpret
from shared.ids import InvalidResourceId, ServerId
from shared.messages import InvalidMessage, JobMessage

from .test_ids import GOOD, SUB

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

# Pieces that make IDs look almost right: traversal, encodings, look-alikes, other providers and types.
id_pieces = st.sampled_from(
    [
        "subscriptions", SUB, "resourceGroups", "resourcegroups", "rg-data", "providers", "Microsoft.DBforPostgreSQL",
        "Microsoft.DBForPostgreSQL", "Microsoft.Sql", "flexibleServers", "servers", "orders-db", "..", ".", "%2F",
        "%2e%2e", "\u043erders-db", "\uff0f", "databases", "db", "", " ", "a" * 100, "orders-db?x=1", "orders-db#",
        "00000000-0000-0000-0000-00000000000g",
    ]
)  # fmt: skip
near_ids = st.lists(id_pieces, min_size=0, max_size=10).map(lambda parts: "/" + "/".join(parts))


@given(st.one_of(near_ids, st.text(max_size=300), json_values))
@settings(max_examples=400)
def test_server_id_parse_accepts_only_valid_ids(candidate: Any):
    try:
        server = ServerId.parse(candidate)
    except InvalidResourceId:
        return
    # Whatever passed is canonical, re-parses to itself, and carries no traversal or encoding.
    assert ServerId.parse(server.id) == server
    assert ".." not in server.id and "%" not in server.id and server.id.isascii()
    assert server.key.endswith("/providers/microsoft.dbforpostgresql/flexibleservers/" + server.name)


event_data = st.fixed_dictionaries(
    {},
    optional={
        "operationName": st.one_of(
            st.sampled_from([
                "Microsoft.DBforPostgreSQL/flexibleServers/write",
                "microsoft.dbforpostgresql/FLEXIBLESERVERS/write",
                "Microsoft.DBforPostgreSQL/flexibleServers/databases/write",
            ]),
            json_values,
        ),
        "resourceUri": st.one_of(st.just(GOOD), near_ids, json_values),
    },
)  # fmt: skip


@given(
    event_type=st.one_of(st.just("Microsoft.Resources.ResourceWriteSuccess"), json_values),
    subject=st.one_of(st.just(GOOD), near_ids, json_values),
    data=st.one_of(event_data, json_values),
)
@settings(max_examples=400)
def test_interpret_never_raises_and_only_yields_valid_servers(event_type: Any, subject: Any, data: Any):
    result = interpret(ResourceEvent(id="e", event_type=event_type, subject=subject, event_time="", data=data))
    assert isinstance(result, ServerWritten | Ignored)
    if isinstance(result, ServerWritten):
        assert ServerId.parse(result.server.id) == result.server


message_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"version": st.one_of(st.just(1), json_values), "kind": st.one_of(st.just("protect"), json_values),
         "serverId": st.one_of(st.just(GOOD), near_ids, json_values)},
        optional={"reason": json_values, "source": json_values, "extra": json_values},
    ).map(json.dumps),
)  # fmt: skip


@given(message_bodies)
@settings(max_examples=400)
def test_job_messages_parse_or_fail_with_a_reason(raw: Any):
    try:
        message = JobMessage.parse(raw)
    except InvalidMessage as exc:
        reason = str(exc)
        assert reason, "a rejection always says why"
        return
    assert ServerId.parse(message.server.id) == message.server
    assert JobMessage.parse(message.to_json()).server == message.server


headers = st.dictionaries(
    st.sampled_from(["retry-after", "azure-asyncoperation", "location", "x-ms-request-id"]),
    st.text(max_size=60),
    max_size=4,
)


@given(status=st.integers(100, 599), body=json_values, headers=headers, mode=st.sampled_from(list(PollMode)))
@settings(max_examples=400)
def test_odd_arm_responses_classify_without_raising(status: int, body: Any, headers: dict[str, str], mode: PollMode):
    result = classify(mode, status, body, headers, default_retry_after=5)
    assert 0 <= result.retry_after_s <= 600
    assert 0 <= parse_retry_after(headers) <= 600
    polling_target(headers)
    error = ArmError.from_body(body, status=status, headers=headers)
    assert error.code and error.message


class _NoCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("check_url must never need a token")


@given(st.one_of(st.text(max_size=200), st.sampled_from([
    "http://management.azure.com/x", "https://management.azure.com.evil.com/x", "https://evil.com/x",
    "https://user:pw@management.azure.com/x", "https://management.azure.com/../x", "//evil.com/x",
    "https://management.azure.com:444/x", "https://MANAGEMENT.azure.com/ok", "https://management.azure.com\\@evil.com/",
])))  # fmt: skip
@settings(max_examples=300)
def test_only_same_origin_https_urls_pass(url: str):
    client = ArmClient("https://management.azure.com", _NoCredential())
    try:
        accepted = client.check_url(url)
    except ForeignOriginError:
        return
    assert accepted.lower().startswith("https://management.azure.com/")
    assert ".." not in accepted and "@" not in accepted.split("/", 3)[2]
