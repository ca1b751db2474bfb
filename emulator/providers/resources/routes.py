"""Routes for Microsoft.Resources: resource groups and the subscriptions list."""

from __future__ import annotations

from emulator.apiversions import RESOURCES, SUBSCRIPTIONS
from emulator.hub import Hub
from emulator.providers.resources.handlers import ResourceGroupHandlers
from emulator.providers.resources.models import ResourceGroups
from emulator.routing import Route

RG = "/subscriptions/{sub}/resourceGroups/{rg}"


def register(hub: Hub) -> ResourceGroups:
    model = ResourceGroups(hub.state, hub.clock)
    h = ResourceGroupHandlers(hub, model)
    r = hub.router
    p = "resources"
    r.add(Route("PUT", RG, h.put, RESOURCES, p, name="Microsoft.Resources/subscriptions/resourceGroups/write"))
    r.add(Route("GET", RG, h.get, RESOURCES, p))
    r.add(Route("HEAD", RG, h.head, RESOURCES, p, kind="read"))
    r.add(Route("DELETE", RG, h.delete, RESOURCES, p, name="Microsoft.Resources/subscriptions/resourceGroups/delete"))
    r.add(Route("GET", "/subscriptions/{sub}/resourcegroups", h.list, RESOURCES, p))
    r.add(Route("GET", "/subscriptions", h.list_subscriptions, SUBSCRIPTIONS, p))
    hub.models["resource_groups"] = model
    return model
