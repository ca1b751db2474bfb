"""An Event Grid event subscription's filter, applied to the events the emulator delivers.

The filter is read from the same file the Bicep deploys (`infra/eventgrid/filter.json`, loaded there with
`loadJsonContent`), so the local stack receives exactly the events Azure would send the deployed app: included
event types, and advanced filters. Only the operators that file can use are implemented; an unknown one is a
start-up error, never a silent pass. String comparisons are case-insensitive, as Event Grid's are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STRING_OPERATORS: dict[str, Callable[[str, list[str]], bool]] = {
    "StringIn": lambda value, values: value in values,
    "StringNotIn": lambda value, values: value not in values,
    "StringBeginsWith": lambda value, values: any(value.startswith(v) for v in values),
    "StringEndsWith": lambda value, values: any(value.endswith(v) for v in values),
    "StringContains": lambda value, values: any(v in value for v in values),
}


class FilterError(ValueError):
    """The filter document cannot be applied (shape or operator)."""


@dataclass(frozen=True)
class AdvancedFilter:
    operator: str
    key: str
    values: tuple[str, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        value: Any = event
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str):
            return self.operator == "StringNotIn"  # Event Grid: a missing key fails every filter but NotIn
        return _STRING_OPERATORS[self.operator](value.lower(), [v.lower() for v in self.values])


@dataclass(frozen=True)
class EventFilter:
    included_types: frozenset[str] | None
    advanced: tuple[AdvancedFilter, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        """All conditions must hold (Event Grid ANDs advanced filters)."""
        event_type = str(event.get("eventType", "")).lower()
        if self.included_types is not None and event_type not in self.included_types:
            return False
        return all(f.matches(event) for f in self.advanced)

    @classmethod
    def from_document(cls, document: Any) -> EventFilter:
        if not isinstance(document, dict):
            raise FilterError("an event filter is a JSON object")
        types = document.get("includedEventTypes")
        if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
            raise FilterError("includedEventTypes must be a list of strings")
        advanced = []
        for item in document.get("advancedFilters") or []:
            operator = item.get("operatorType") if isinstance(item, dict) else None
            if operator not in _STRING_OPERATORS:
                raise FilterError(f"advanced filter operator {operator!r} is not emulated")
            values = item.get("values")
            if not isinstance(item.get("key"), str) or not isinstance(values, list):
                raise FilterError("an advanced filter needs a 'key' and a list of 'values'")
            advanced.append(AdvancedFilter(operator, item["key"], tuple(str(v) for v in values)))
        return cls(frozenset(t.lower() for t in types) if types is not None else None, tuple(advanced))

    @classmethod
    def load(cls, path: Path) -> EventFilter:
        try:
            return cls.from_document(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise FilterError(f"event filter {path}: {exc}") from exc
