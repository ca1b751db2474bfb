"""ARM route table: case-insensitive path templates mapped to handlers, with their api-versions and kind.

ARM paths are case-insensitive (`resourceGroups`/`resourcegroups`), so routes are regexes compiled with
IGNORECASE from readable templates instead of aiohttp's case-sensitive router.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from emulator.context import Ctx

Handler = Callable[[web.Request, "Ctx"], Awaitable[web.StreamResponse]]

_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")


def compile_template(template: str) -> re.Pattern[str]:
    """`/a/{name}/b/{rest:.+}` -> an anchored, case-insensitive regex with named groups."""
    out = ""
    pos = 0
    for m in _PARAM.finditer(template):
        out += re.escape(template[pos : m.start()])
        out += f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})"
        pos = m.end()
    out += re.escape(template[pos:])
    return re.compile(f"^{out}/?$", re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """One ARM operation: method + path template -> handler; `kind` feeds throttling and stats."""

    method: str
    template: str
    handler: Handler
    api_versions: frozenset[str]
    provider: str
    kind: str = ""  # read | write | delete | poll; derived from the method when empty
    name: str = ""
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_template(self.template))

    @property
    def op_kind(self) -> str:
        if self.kind:
            return self.kind
        return {"GET": "read", "DELETE": "delete"}.get(self.method, "write")


class Router:
    """Ordered route table; the first template that matches wins (specific routes are added first)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, Any], list[Route]]:
        """Return (route, params, routes-matching-the-path-with-another-method)."""
        others: list[Route] = []
        for route in self.routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), others
            others.append(route)
        return None, {}, others
