"""The event subscription filter the emulator applies to deliveries (emulator/eventfilter.py), on its own."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.eventfilter import EventFilter, FilterError
from scripts.stack import EVENT_FILTER


def _event(event_type: str, operation: Any) -> dict[str, Any]:
    return {"eventType": event_type, "data": {"operationName": operation}}


def test_the_deployed_filter_passes_server_writes_and_starts_only() -> None:
    deployed = EventFilter.load(EVENT_FILTER)
    write = "Microsoft.Resources.ResourceWriteSuccess"
    assert deployed.matches(_event(write, "Microsoft.DBforPostgreSQL/flexibleServers/write"))
    assert deployed.matches(_event(write.lower(), "MICROSOFT.DBFORPOSTGRESQL/FLEXIBLESERVERS/WRITE"))
    assert not deployed.matches(_event(write, "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write"))
    assert not deployed.matches(_event(write, "Microsoft.DataProtection/backupVaults/backupInstances/write"))
    action = "Microsoft.Resources.ResourceActionSuccess"
    assert deployed.matches(_event(action, "Microsoft.DBforPostgreSQL/flexibleServers/start/action"))
    assert not deployed.matches(_event(action, "Microsoft.DBforPostgreSQL/flexibleServers/stop/action"))
    assert not deployed.matches(_event(action, "Microsoft.DataProtection/backupVaults/validateForBackup/action"))
    assert not deployed.matches(_event(write, None))


def test_operators_and_missing_keys_follow_event_grid() -> None:
    document = {"advancedFilters": [{"operatorType": "StringNotIn", "key": "data.operationName", "values": ["x"]}]}
    not_in = EventFilter.from_document(document)
    assert not_in.matches(_event("any", None))  # only NotIn passes a missing key
    assert not not_in.matches(_event("any", "X"))
    begins = EventFilter.from_document(
        {"advancedFilters": [{"operatorType": "StringBeginsWith", "key": "data.operationName", "values": ["Ab"]}]}
    )
    assert begins.matches(_event("any", "abc")) and not begins.matches(_event("any", "cab"))


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"includedEventTypes": "x"},
        {"advancedFilters": [{"operatorType": "NumberIn", "key": "data.x", "values": [1]}]},
        {"advancedFilters": [{"operatorType": "StringIn", "values": ["x"]}]},
    ],
)
def test_a_filter_the_emulator_cannot_apply_is_refused(document: Any) -> None:
    with pytest.raises(FilterError):
        EventFilter.from_document(document)
