"""Assemble the dev host: index the app, open the HTTP port, start listeners and timers, stop them cleanly.

Everything that can be wrong with the app or its settings is checked before the port opens, so a launcher that
waits for the port (scripts/stack.py) sees a clean exit with the reason in the log, not a half-started host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from devhost.accounting import Accounting
from devhost.admin import AdminApi
from devhost.eventgrid import WEBHOOK_PATH, EventGridWebhook
from devhost.httptrigger import HttpTriggers, aiohttp_path
from devhost.invoker import Invoker
from devhost.loader import QUEUE, TIMER, FunctionSpec, import_app, index_functions
from devhost.queues import LEASE_SECONDS, QueueListener, connection_string
from devhost.settings import apply_settings, load_host_config, load_local_settings
from devhost.timers import TimerScheduler

log = logging.getLogger("devhost")

DRAIN_SECONDS = 8.0  # below scripts/stack.py's 10 s before SIGKILL


@dataclass(frozen=True)
class Options:
    app: str
    settings_path: Path
    host_json: Path
    port: int
    host: str = "127.0.0.1"
    queue_lease_seconds: int = LEASE_SECONDS


async def serve(options: Options) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    values = load_local_settings(options.settings_path)
    applied = apply_settings(values)
    log.info("Settings: %d applied from %s, %d left to the environment", len(applied), options.settings_path,
             len(values) - len(applied))  # fmt: skip
    config = load_host_config(options.host_json)
    settings = dict(os.environ)
    specs = index_functions(import_app(options.app), settings)
    loop = asyncio.get_running_loop()
    accounting = Accounting([s.name for s in specs])
    invoker = Invoker(loop, accounting, config.function_timeout)
    listeners = [
        QueueListener(
            spec,
            config.queues,
            connection_string(str(spec.properties["connection"]), settings, where=f"{spec.name}.connection"),
            invoker,
            lease_seconds=options.queue_lease_seconds,
        )
        for spec in specs
        if spec.trigger_type == QUEUE
    ]
    timers = {s.name: TimerScheduler(s, invoker) for s in specs if s.trigger_type == TIMER}
    state = {"value": "Initializing"}
    app = web.Application()
    EventGridWebhook(specs, invoker).add_routes(app)
    HttpTriggers(specs, invoker).add_routes(app)
    AdminApi(specs, invoker, accounting, timers, lambda: state["value"]).add_routes(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=DRAIN_SECONDS / 2)

    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    stoppables: list[QueueListener | TimerScheduler] = []
    try:
        for listener in listeners:
            await loop.run_in_executor(None, listener.start)
            stoppables.append(listener)
        for timer in timers.values():
            timer.start()
            stoppables.append(timer)
        # The port opens last: a launcher waiting for it then knows every listener and timer is running.
        await runner.setup()
        await web.TCPSite(runner, options.host, options.port).start()
        state["value"] = "Running"
        _log_functions(specs, options)
        log.info("Host started on http://%s:%d", options.host, options.port)
        await stopping.wait()
    finally:
        state["value"] = "Stopping"
        await _drain(loop, stoppables, invoker)
        await runner.cleanup()
        invoker.shutdown()
        log.info("Invocation summary: %s", json.dumps(accounting.snapshot(), sort_keys=True))
    return 0


async def _drain(
    loop: asyncio.AbstractEventLoop, stoppables: list[QueueListener | TimerScheduler], invoker: Invoker
) -> None:
    """Stop polling and timers, then give running invocations what is left of DRAIN_SECONDS."""
    log.info("Stopping: no new polls or timer runs; waiting up to %.0fs for running invocations", DRAIN_SECONDS)
    deadline = loop.time() + DRAIN_SECONDS
    await asyncio.gather(*(loop.run_in_executor(None, item.stop, DRAIN_SECONDS / 2) for item in stoppables))
    remaining = max(0.0, deadline - loop.time())
    if not await loop.run_in_executor(None, invoker.wait_idle, remaining):
        log.error("%d invocation(s) still running at shutdown; abandoning them", invoker.running)


def _log_functions(specs: list[FunctionSpec], options: Options) -> None:
    log.info("Functions in %s:", options.app)
    for spec in specs:
        detail = ", ".join(f"{k}={v}" for k, v in spec.properties.items())
        if spec.trigger_type == "eventGridTrigger":
            detail = f"http://{options.host}:{options.port}{WEBHOOK_PATH}?functionName={spec.name}"
        elif spec.trigger_type == "httpTrigger":
            methods = ",".join(spec.properties["methods"]) or "any method"
            detail = f"{methods} http://{options.host}:{options.port}{aiohttp_path(str(spec.properties['route']))}"
        log.info("  %s: %s%s", spec.name, spec.trigger_type, f" [{detail}]" if detail else "")
