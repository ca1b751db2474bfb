"""Per-request context that the middleware stages fill in and handlers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.routing import Route


@dataclass
class Ctx:
    request_id: str
    correlation_id: str
    client_request_id: str | None
    origin: str
    method: str
    url: str
    client_ip: str
    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    api_version: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    principal_id: str = ""
    kind: str = ""
    operation_fault: dict[str, Any] | None = None
    async_origin: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def event_context(self) -> dict[str, Any]:
        """The caller facts an Event Grid resource event needs, as plain data (stored with async ops)."""
        return {
            "claims": self.claims,
            "principal_id": self.principal_id,
            "correlation_id": self.correlation_id,
            "client_request_id": self.client_request_id or self.request_id,
            "client_ip": self.client_ip,
            "method": self.method,
            "url": self.url,
        }

    def link_origin(self) -> str:
        """Origin for Azure-AsyncOperation/Location/nextLink; a `foreign_origin` fault swaps it."""
        return self.async_origin or self.origin
