"""Parsing JSON that arrives from outside (queue messages, ARM responses, Event Grid deliveries) within bounds.

`json.loads` alone is not enough for untrusted input: a few kilobytes of `[` raise RecursionError (not
ValueError, so ordinary error handling misses it), a 5,000-digit number raises ValueError only by luck of
CPython's int-digits limit, and a document that is shallow enough to parse can still be deep enough to break
any recursive code that later walks it. Every parse here is checked for size before and depth after (with an
iterative walk), and every failure is one exception type with a reason fit for a log line.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_DEPTH = 32


class JsonRejected(ValueError):
    """The text is not JSON we will read: too large, too deep, or not JSON at all (the reason says which)."""


def loads(data: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse `data`, or raise JsonRejected; never raises anything else for any input."""
    raw = data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise JsonRejected(f"{len(raw)} bytes; the limit is {max_bytes}")
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise JsonRejected(f"nested deeper than {max_depth} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRejected(f"not JSON: {str(exc)[:120]}") from exc
    if depth(value, limit=max_depth) > max_depth:
        raise JsonRejected(f"nested deeper than {max_depth} levels")
    return value


def depth(value: Any, *, limit: int) -> int:
    """Nesting depth of a parsed value (a scalar is 0), counted without recursion; stops once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children if isinstance(child, (dict, list)))
    return deepest
