import json
from pathlib import Path

import jsonschema
import pytest

from shared.messages import MAX_MESSAGE_BYTES, InvalidMessage, JobKind, JobMessage, Source

from .test_ids import GOOD

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "job-message.v1.json").read_text())


def test_round_trip_and_schema_agree():
    message = JobMessage(JobKind.PROTECT, JobMessage.parse(json.dumps(_body())).server, Source.MANUAL, reason="r")
    text = message.to_json()
    jsonschema.validate(json.loads(text), SCHEMA)
    assert JobMessage.parse(text) == JobMessage.parse(text.encode())
    assert JobMessage.parse(text).reason == "r"


def _body(**overrides):
    body = {"version": 1, "kind": "protect", "serverId": GOOD}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (json.dumps([1, 2]), "JSON object"),
        (json.dumps(_body(version=2)), "unsupported version"),
        (json.dumps(_body(version=True)), "unsupported version"),
        (json.dumps(_body(kind="delete-everything")), "unknown kind"),
        (json.dumps(_body(serverId=GOOD + "/databases/x")), "serverId"),
        (json.dumps(_body(extra=1)), "unknown field"),
        (json.dumps({"version": 1, "kind": "protect"}), "missing"),
        (json.dumps(_body(reason=["x"])), "reason"),
        (json.dumps(_body(reason="x" * 501)), "reason"),
        (json.dumps(_body(source="bogus")), "source"),
        ("x" * (MAX_MESSAGE_BYTES + 1), "limit"),
    ],
)
def test_rejects_bad_messages_with_a_reason(raw, why):
    with pytest.raises(InvalidMessage, match=why):
        JobMessage.parse(raw)
    # The published schema refuses the same structured cases.
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return
    if isinstance(body, dict) and len(raw) <= MAX_MESSAGE_BYTES:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, SCHEMA)
