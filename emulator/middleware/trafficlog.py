"""Stage 2: the traffic log. One JSON object per ARM exchange, secrets redacted, for spec validation."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.middleware.common import ctx_of, is_admin

REDACTED = "REDACTED"
SECRET_HEADERS = {"authorization", "x-identity-header", "x-emulator-admin"}


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def redact_headers(headers: Any) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


class TrafficLog:
    """Appends JSON lines to a file (flushed per line so a crash loses at most one exchange)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        line = json.dumps({"request": request, "response": response}, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


TRAFFIC_LOG_KEY = web.AppKey("traffic_log", TrafficLog)


def record(log: TrafficLog, url: str, request: web.Request, raw: bytes, response: web.StreamResponse) -> None:
    body = response.body if isinstance(response, web.Response) else None
    resp_body = _body(body) if isinstance(body, bytes) else None
    if isinstance(resp_body, dict) and "access_token" in resp_body:
        resp_body = {**resp_body, "access_token": REDACTED}
    log.write(
        {"method": request.method, "url": url, "headers": redact_headers(request.headers), "body": _body(raw)},
        {"status": response.status, "headers": dict(response.headers), "body": resp_body},
    )


@web.middleware
async def traffic_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    log: TrafficLog | None = request.app.get(TRAFFIC_LOG_KEY)
    if log is None or is_admin(request):
        return await handler(request)
    raw = await request.read()
    response = await handler(request)
    ctx = ctx_of(request)
    if response.status == 0 or request.get("reset"):
        return response
    # request-id headers are added by the outer stage; add them here too so the log shows what clients saw
    response.headers.setdefault("x-ms-request-id", ctx.request_id)
    response.headers.setdefault("x-ms-correlation-request-id", ctx.correlation_id)
    record(log, ctx.url, request, raw, response)
    return response
