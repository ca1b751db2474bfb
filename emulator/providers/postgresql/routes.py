"""Routes for Microsoft.DBforPostgreSQL/flexibleServers."""

from __future__ import annotations

from emulator.apiversions import POSTGRESQL
from emulator.hub import Hub
from emulator.providers.postgresql.handlers import ServerHandlers
from emulator.providers.postgresql.models import NS, Servers
from emulator.routing import Route

SRV = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
LOC = "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/locations/{location}"


def register(hub: Hub) -> Servers:
    model = Servers(hub.state, hub.clock, hub.operations, hub.events, hub.models["resource_groups"], hub.config)
    h = ServerHandlers(hub, model)
    r = hub.router
    v = POSTGRESQL
    p = "postgresql"
    r.add(Route("GET", LOC + "/azureAsyncOperation/{op}", h.op_status, v, p, kind="poll"))
    r.add(Route("GET", LOC + "/operationResults/{op}", h.op_result, v, p, kind="poll"))
    for kind in ("databases", "firewallRules"):
        child = f"{SRV}/{{kind:{kind}}}/{{child}}"
        r.add(Route("PUT", child, h.put_child, v, p, name=f"{NS}/flexibleServers/{kind}/write"))
        r.add(Route("GET", child, h.get_child, v, p))
    for action in ("stop", "start", "restart"):
        name = f"{NS}/flexibleServers/{action}/action"
        r.add(Route("POST", f"{SRV}/{{action:{action}}}", h.action, v, p, name=name))
    r.add(Route("PUT", SRV, h.put, v, p, name=f"{NS}/flexibleServers/write"))
    r.add(Route("GET", SRV, h.get, v, p))
    r.add(Route("PATCH", SRV, h.patch, v, p, name=f"{NS}/flexibleServers/write"))
    r.add(Route("DELETE", SRV, h.delete, v, p, name=f"{NS}/flexibleServers/delete"))
    r.add(
        Route(
            "GET",
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers",
            h.list_rg,
            v,
            p,
        )
    )
    r.add(Route("GET", "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/flexibleServers", h.list_sub, v, p))
    hub.models["servers"] = model
    return model
