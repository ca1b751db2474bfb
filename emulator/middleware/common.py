"""Helpers shared by the pipeline stages."""

from __future__ import annotations

from aiohttp import web

from emulator.context import Ctx
from emulator.hub import HUB_KEY, Hub

ADMIN_PREFIX = "/_emulator"


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB_KEY]


def ctx_of(request: web.Request) -> Ctx:
    ctx: Ctx = request["ctx"]
    return ctx


def is_admin(request: web.Request) -> bool:
    return request.path.startswith(ADMIN_PREFIX)
