"""The admin endpoints: the host's own status and manual-run routes, plus invocation accounting.

`POST /admin/functions/{name}` mirrors the real host's admin API (answer 202, run in the background) so a
timer or queue function can be run once without waiting for its schedule or a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from azure.functions import meta

from devhost.accounting import Accounting
from devhost.invoker import Invoker, convert_input
from devhost.loader import EVENT_GRID, QUEUE, TIMER, FunctionSpec
from devhost.timers import TimerScheduler

log = logging.getLogger("devhost.admin")


def manual_queue_input(body: str) -> Any:
    """A queue message that never was in a queue: first delivery, fresh id, no receipt."""
    now = datetime.now(UTC).isoformat()
    metadata = {
        "Id": meta.Datum(str(uuid.uuid4()), "string"),
        "DequeueCount": meta.Datum("1", "json"),
        "InsertionTime": meta.Datum(json.dumps(now), "json"),
    }
    return convert_input(QUEUE, meta.Datum(body, "string"), metadata)


class AdminApi:
    def __init__(
        self,
        specs: list[FunctionSpec],
        invoker: Invoker,
        accounting: Accounting,
        timers: dict[str, TimerScheduler],
        state: Callable[[], str],
    ) -> None:
        self._specs = {s.name.lower(): s for s in specs}
        self._invoker = invoker
        self._accounting = accounting
        self._timers = timers
        self._state = state
        self._background: set[asyncio.Task[Any]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/admin/host/status", self.status)
        app.router.add_get("/admin/invocations", self.invocations)
        app.router.add_post("/admin/functions/{name}", self.run_function)

    async def status(self, request: web.Request) -> web.Response:
        functions = [
            {"name": s.name, "trigger": s.trigger_type, **{k: v for k, v in s.properties.items()}}
            for s in self._specs.values()
        ]
        return web.json_response({"state": self._state(), "functions": functions})

    async def invocations(self, request: web.Request) -> web.Response:
        return web.json_response({**self._accounting.snapshot(), "running": self._invoker.running})

    async def run_function(self, request: web.Request) -> web.Response:
        spec = self._specs.get(request.match_info["name"].lower())
        if spec is None:
            return web.json_response({"error": f"no function named '{request.match_info['name']}'"}, status=404)
        try:
            document = json.loads(await request.read() or b"{}")
            text = document.get("input", "")
            if not isinstance(text, str):
                raise TypeError("'input' must be a string")
            work = self._work_for(spec, text)
        except Exception as exc:  # bad JSON, bad event: the caller's mistake
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        task = asyncio.ensure_future(work())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.Response(status=202)

    def _work_for(self, spec: FunctionSpec, text: str) -> Callable[[], Any]:
        loop = asyncio.get_running_loop()
        reason = "This function was programmatically called via the host APIs."
        if spec.trigger_type == TIMER:
            scheduler = self._timers[spec.name]
            return lambda: loop.run_in_executor(None, scheduler.run_once, reason)
        if spec.trigger_type == QUEUE:
            value = manual_queue_input(text)
        elif spec.trigger_type == EVENT_GRID:
            value = convert_input(EVENT_GRID, meta.Datum(json.dumps(json.loads(text)), "json"))
        else:  # the real host's admin API does not run HTTP functions either: call their route
            raise ValueError(f"{spec.trigger_type} functions are called through their route, not the admin API")
        return lambda: self._invoker.invoke(spec, value, reason)
