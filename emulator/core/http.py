"""Small request/response helpers shared by every provider's handlers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from emulator.context import Ctx
from emulator.core.errors import InvalidRequestContent


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode() if body is not None else b"",
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def empty(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ARM's InvalidRequestContent."""
    raw = await request.read()
    if not raw:
        raise InvalidRequestContent("The request content was invalid and could not be deserialized: 'empty body'.")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequestContent(f"The request content was invalid and could not be deserialized: '{exc}'.") from exc
    if not isinstance(body, dict):
        raise InvalidRequestContent("The request content was invalid and could not be deserialized: not an object.")
    return body


def page(
    request: web.Request, ctx: Ctx, items: list[dict[str, Any]], size: int, total: int, start: int
) -> dict[str, Any]:
    """ARM paging: `{"value": [...], "nextLink": same URL + $skiptoken}` while more items remain."""
    body: dict[str, Any] = {"value": items}
    if start + size < total:
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(start + size)
        body["nextLink"] = f"{ctx.link_origin()}{request.path}?{urlencode(query)}"
    return body


def skip(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("$skiptoken", "0")))
    except ValueError:
        return 0
