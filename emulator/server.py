"""Assembles and runs the emulator: TLS ARM endpoint + plain-http identity endpoint, one visible pipeline.

ARM request pipeline, outermost first (each stage is one module under `emulator/middleware/`):

    request id -> traffic log -> errors -> faults -> routing -> api-version -> auth -> throttling -> handler

`errors` renders every ArmError raised by the stages after it (and by handlers) once, as CloudError JSON; it
sits right inside the traffic log so the log records exactly what the client received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import signal
import socket
import ssl
import sys
import uuid
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from emulator import admin
from emulator import config as config_mod
from emulator import identity as identity_mod
from emulator.context import Ctx
from emulator.core.clock import Clock
from emulator.core.errors import ArmError, render
from emulator.core.operations import Operations
from emulator.core.store import Snapshotter, State
from emulator.core.tokens import TokenIssuer
from emulator.eventfilter import EventFilter
from emulator.eventgrid import EventBus
from emulator.faults import Faults
from emulator.hub import HUB_KEY, Hub, Identity
from emulator.middleware.apiversion import api_version
from emulator.middleware.auth import auth
from emulator.middleware.common import is_admin
from emulator.middleware.errors import errors
from emulator.middleware.faults import faults
from emulator.middleware.requestid import request_id
from emulator.middleware.routing import routing
from emulator.middleware.throttle import throttle
from emulator.middleware.trafficlog import TRAFFIC_LOG_KEY, TrafficLog, traffic_log
from emulator.providers.authorization import routes as authorization_routes
from emulator.providers.dataprotection import routes as dataprotection_routes
from emulator.providers.postgresql import routes as postgresql_routes
from emulator.providers.resources import routes as resources_routes
from emulator.stats import Stats
from emulator.throttle import Throttle

log = logging.getLogger("emulator")


def pipeline() -> list[Any]:
    """The ARM middleware chain in order (kept as data so docs and tests can show it)."""
    return [request_id, traffic_log, errors, faults, routing, api_version, auth, throttle]


async def dispatch(request: web.Request) -> web.StreamResponse:
    """The handler stage: call the route the routing stage found."""
    if is_admin(request):
        return render(ArmError("Unknown admin route.", code="NotFound", status=404))
    ctx: Ctx = request["ctx"]
    assert ctx.route is not None
    return await ctx.route.handler(request, ctx)


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Identity facts kept across restarts so tokens, principal ids and the admin secret stay valid."""
    path = data_dir / "identity.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {
        "tenant_id": str(uuid.uuid4()),
        "app_principal_id": str(uuid.uuid4()),
        "app_client_id": str(uuid.uuid4()),
        "identity_header": secrets.token_urlsafe(24),
        "token_key": secrets.token_hex(32),
        "default_subscription": str(uuid.uuid4()),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return data


def tls_context(data_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """TLS for 127.0.0.1/localhost from a local CA; CA, server certificate and key live in the data dir and are
    reused on restart, so clients that trusted the CA keep working."""
    ca_cert = data_dir / "ca.pem"
    ca_key = data_dir / "ca-key.pem"
    server_pem = data_dir / "server.pem"  # server key + certificate chain
    if not (ca_cert.exists() and ca_key.exists()):
        ca = trustme.CA(organization_name="autoprotect emulator")
        ca.private_key_pem.write_to_path(str(ca_key))
        os.chmod(ca_key, 0o600)
        ca.cert_pem.write_to_path(str(ca_cert))
        server_pem.unlink(missing_ok=True)
    if not server_pem.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
        os.chmod(server_pem, 0o600)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(server_pem))
    return ctx, ca_cert.resolve()


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def build_hub(
    cfg: dict[str, Any],
    ids: dict[str, str],
    event_webhook: str | None,
    event_schema: str,
    event_filter: EventFilter | None = None,
) -> Hub:
    seed = int(cfg.get("seed", 1))
    clock = Clock(scale=float(cfg["clock_scale"]))
    state = State()
    stats = Stats()
    rng = random.Random(seed + 1)
    hub_ref: dict[str, Hub] = {}
    operations = Operations(state, clock, lambda: hub_ref["hub"].spelling())
    identity = Identity(
        tenant_id=ids["tenant_id"],
        app_principal_id=ids["app_principal_id"],
        app_client_id=ids["app_client_id"],
        identity_header=ids["identity_header"],
        default_subscription=ids["default_subscription"],
    )
    faults_engine = Faults(seed)
    faults_engine.set(list(cfg.get("faults", [])))
    hub = Hub(
        config=cfg,
        clock=clock,
        rng=rng,
        state=state,
        operations=operations,
        tokens=TokenIssuer(bytes.fromhex(ids["token_key"]), ids["tenant_id"]),
        events=EventBus(
            clock, cfg, stats, ids["tenant_id"], random.Random(seed + 2), event_webhook, event_schema, event_filter
        ),
        stats=stats,
        faults=faults_engine,
        throttle=Throttle(clock, cfg),
        identity=identity,
    )
    hub_ref["hub"] = hub
    resources_routes.register(hub)
    postgresql_routes.register(hub)
    authorization_routes.register(hub)
    dataprotection_routes.register(hub)
    return hub


def make_arm_app(hub: Hub, traffic: TrafficLog | None) -> web.Application:
    app = web.Application(middlewares=pipeline(), client_max_size=8 * 1024 * 1024)
    app[HUB_KEY] = hub
    if traffic is not None:
        app[TRAFFIC_LOG_KEY] = traffic
    admin.register(app)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


async def serve(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = config_mod.load(args.profile, Path(args.config) if args.config else None)
    ids = load_secrets(data_dir)
    event_filter = EventFilter.load(Path(args.event_filter)) if args.event_filter else None
    hub = build_hub(cfg, ids, args.event_webhook, args.event_schema, event_filter)
    snap = Snapshotter(hub.state, data_dir / "state.json")
    if snap.load():
        log.info("restored state from %s", snap.path)

    ssl_ctx, ca_path = tls_context(data_dir)
    traffic = TrafficLog(Path(args.traffic_log)) if args.traffic_log else None
    arm_sock = bind(args.port)
    arm_port = arm_sock.getsockname()[1]
    id_sock = bind(0)
    id_port = id_sock.getsockname()[1]
    hub.origin = f"https://127.0.0.1:{arm_port}"
    hub.identity_endpoint = f"http://127.0.0.1:{id_port}/msi/token"
    hub.tokens.audiences.update({hub.origin.lower(), hub.origin.lower() + "/"})

    arm_runner = web.AppRunner(make_arm_app(hub, traffic), access_log=None, handle_signals=False)
    id_app = identity_mod.make_app(hub)
    if traffic is not None:
        id_app[TRAFFIC_LOG_KEY] = traffic
    id_runner = web.AppRunner(id_app, access_log=None, handle_signals=False)
    await arm_runner.setup()
    await id_runner.setup()
    await web.SockSite(arm_runner, arm_sock, ssl_context=ssl_ctx).start()
    await web.SockSite(id_runner, id_sock).start()

    retention = lambda: float(hub.config.get("operation_retention_s", 86400))  # noqa: E731
    tasks = [asyncio.create_task(hub.operations.run(retention), name="ticker")]
    if args.event_webhook:
        tasks.append(asyncio.create_task(hub.events.run(), name="events"))
    tasks.append(asyncio.create_task(_snapshots(hub, snap), name="snapshots"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    banner = {
        "arm": hub.origin,
        "ca_bundle": str(ca_path),
        "identity_endpoint": hub.identity_endpoint,
        "identity_header": hub.identity.identity_header,
        "admin": f"{hub.origin}/_emulator",
        "tenant_id": hub.identity.tenant_id,
        "app_principal_id": hub.identity.app_principal_id,
        "app_client_id": hub.identity.app_client_id,
        "subscription_ids": [hub.identity.default_subscription],
        "profile": cfg["profile"],
        "data_dir": str(data_dir),
    }
    sys.stdout.write(json.dumps(banner) + "\n")
    sys.stdout.flush()
    log.info("emulator ready: %s (profile %s)", hub.origin, cfg["profile"])

    await stop.wait()
    log.info("shutting down")
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    snap.save()
    await arm_runner.cleanup()
    await id_runner.cleanup()
    if traffic is not None:
        traffic.close()


async def _snapshots(hub: Hub, snap: Snapshotter) -> None:
    """Periodic snapshot: serialize on the loop (consistent), write in a worker thread (no stall)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(float(hub.config.get("snapshot_interval_s", 5)))
        if hub.state.dirty:
            text = hub.state.dump()
            hub.state.dirty = False
            await loop.run_in_executor(None, snap.write, text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--port", type=int, default=0, help="ARM https port (0 picks a free one)")
    parser.add_argument("--data-dir", required=True, help="state snapshot, CA and secrets live here")
    parser.add_argument("--profile", default="realistic", help=f"one of {config_mod.profile_names()}")
    parser.add_argument("--config", help="JSON file merged over the profile")
    parser.add_argument("--traffic-log", help="append one JSON line per exchange to this file")
    parser.add_argument("--event-webhook", help="deliver Event Grid resource events to this URL")
    parser.add_argument("--event-schema", choices=["eventgrid", "cloudevents"], default="eventgrid")
    parser.add_argument(
        "--event-filter",
        help="deliver only the events this event-subscription filter passes (infra/eventgrid/filter.json)",
    )
    parser.add_argument("--log-level", default=os.environ.get("EMULATOR_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(serve(args))
