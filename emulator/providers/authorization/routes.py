"""Routes for Microsoft.Authorization/roleAssignments at any scope."""

from __future__ import annotations

from emulator.apiversions import AUTHORIZATION
from emulator.hub import Hub
from emulator.providers.authorization.handlers import RoleAssignmentHandlers
from emulator.providers.authorization.models import RA_TYPE, RoleAssignments
from emulator.routing import Route

RA = "{scope:.*}/providers/Microsoft.Authorization/roleAssignments"


def register(hub: Hub) -> RoleAssignments:
    model = RoleAssignments(hub.state, hub.clock, hub.config)
    h = RoleAssignmentHandlers(hub, model)
    r = hub.router
    v = AUTHORIZATION
    p = "authorization"
    r.add(Route("PUT", RA + "/{name}", h.put, v, p, name=f"{RA_TYPE}/write"))
    r.add(Route("GET", RA + "/{name}", h.get, v, p))
    r.add(Route("DELETE", RA + "/{name}", h.delete, v, p, name=f"{RA_TYPE}/delete"))
    r.add(Route("GET", RA, h.list, v, p))
    hub.models["role_assignments"] = model
    return model
