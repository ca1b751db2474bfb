"""Reading untrusted ARM JSON without tripping over missing or mistyped levels."""

from __future__ import annotations

from typing import Any


def dig(value: Any, *keys: str) -> Any:
    """A nested field, or None when any level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
