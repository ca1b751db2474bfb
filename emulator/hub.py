"""The emulator's shared services, built once and handed to middleware, handlers and models.

Handlers and models receive what they need through their constructors (no globals), so a test can build a
hub with a fake clock and drive a model without HTTP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulator.core.clock import Clock
from emulator.core.operations import Operations
from emulator.core.store import State
from emulator.core.tokens import TokenIssuer
from emulator.eventgrid import EventBus
from emulator.faults import Faults
from emulator.routing import Router
from emulator.stats import Stats
from emulator.throttle import Throttle


@dataclass
class Identity:
    """The app's system-assigned identity and the emulator's fixed tenant."""

    tenant_id: str
    app_principal_id: str
    app_client_id: str
    identity_header: str
    default_subscription: str


@dataclass
class Hub:
    config: dict[str, Any]
    clock: Clock
    rng: random.Random
    state: State
    operations: Operations
    tokens: TokenIssuer
    events: EventBus
    stats: Stats
    faults: Faults
    throttle: Throttle
    identity: Identity
    router: Router = field(default_factory=Router)
    origin: str = ""
    identity_endpoint: str = ""
    models: dict[str, Any] = field(default_factory=dict)

    def latency(self, name: str) -> float:
        return float(self.config["latency_s"][name])

    def retry_after(self) -> int:
        """An async Retry-After: a service value drawn from the configured range, scaled, whole seconds."""
        lo = float(self.config["retry_after_s"]["min"])
        hi = float(self.config["retry_after_s"]["max"])
        return self.clock.retry_after(self.rng.uniform(lo, hi))

    def spelling(self) -> str:
        mode = str(self.config.get("status_spelling", "mixed"))
        if mode == "mixed":
            return self.rng.choice(["InProgress", "Inprogress"])
        return mode


HUB_KEY = web.AppKey("hub", Hub)
