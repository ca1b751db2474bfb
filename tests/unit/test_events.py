import json
from pathlib import Path

import pytest

from shared.events import WANTED, Ignored, ResourceEvent, ServerWritten, interpret

from .test_ids import GOOD


def _event(operation="Microsoft.DBforPostgreSQL/flexibleServers/write", subject=GOOD, uri=GOOD, **kw):
    data = {"operationName": operation, "resourceUri": uri, "status": "Succeeded"}
    return ResourceEvent(
        id=kw.get("id", "e1"),
        event_type=kw.get("event_type", "Microsoft.Resources.ResourceWriteSuccess"),
        subject=subject,
        event_time="2026-11-26T10:00:00+00:00",
        data=kw.get("data", data),
    )


def test_server_write_is_recognised_case_insensitively():
    result = interpret(_event(operation="MICROSOFT.DBFORPOSTGRESQL/FLEXIBLESERVERS/WRITE", subject=GOOD.upper()))
    assert isinstance(result, ServerWritten)
    assert result.server.id == GOOD


def test_a_server_start_wakes_the_server():
    start = _event(
        operation="Microsoft.DBforPostgreSQL/flexibleServers/start/action",
        event_type="Microsoft.Resources.ResourceActionSuccess",
    )
    assert isinstance(interpret(start), ServerWritten)


def test_the_deployed_filter_delivers_exactly_what_the_app_acts_on():
    """infra/eventgrid/filter.json and shared/events.py must agree, or events are paid for and dropped, or lost."""
    deployed = json.loads((Path(__file__).parents[2] / "infra" / "eventgrid" / "filter.json").read_text())
    (operations,) = [f["values"] for f in deployed["advancedFilters"] if f["key"] == "data.operationName"]
    assert {t.lower() for t in deployed["includedEventTypes"]} == set(WANTED)
    assert {o.lower() for o in operations} == set(WANTED.values())


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (_event(event_type="Microsoft.Resources.ResourceDeleteSuccess"), "event type"),
        (
            _event(
                operation="Microsoft.DBforPostgreSQL/flexibleServers/stop/action",
                event_type="Microsoft.Resources.ResourceActionSuccess",
            ),
            "operation",
        ),
        (_event(event_type="Microsoft.Resources.ResourceActionSuccess"), "operation"),
        (_event(operation="Microsoft.DBforPostgreSQL/flexibleServers/databases/write"), "operation"),
        (_event(operation="Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write"), "operation"),
        (_event(subject=GOOD + "/databases/db", uri=GOOD + "/databases/db"), "not a flexible server"),
        (_event(subject=GOOD.replace("orders-db", "other-db")), "different resources"),
        (_event(data="not an object"), "operation"),
        (_event(data={"operationName": 5}), "operation"),
        (_event(event_type=None), "event type"),
        (_event(uri="/subscriptions/../x", subject=""), "not a flexible server"),
    ],
)
def test_everything_else_is_ignored_with_a_reason(event, why):
    result = interpret(event)
    assert isinstance(result, Ignored)
    assert why in result.reason
