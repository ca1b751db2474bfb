"""The error stage: every ArmError raised by a later stage or a handler is rendered here, once, as CloudError.

It sits right inside the traffic log (so logged responses are the rendered errors) and wraps every ARM stage;
unknown exceptions become a loud 500 with the traceback in the log, never a silent success. A handler error on
a write/delete/action also produces the matching `Resource*Failure` event, as ARM does.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.core.errors import ArmError, InternalServerError, render
from emulator.middleware.common import ctx_of, hub_of

log = logging.getLogger("emulator.errors")

FAILURE_EVENTS = {"write": "ResourceWriteFailure", "delete": "ResourceDeleteFailure"}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ArmError as exc:
        ctx = ctx_of(request)
        if request.get("in_handler") and ctx.route is not None and ctx.principal_id:
            kind = ctx.route.op_kind
            event_type = FAILURE_EVENTS.get(kind)
            if event_type and ctx.route.name:
                if ctx.route.name.endswith("/action"):
                    event_type = "ResourceActionFailure"
                hub_of(request).events.emit(
                    event_type, request.path, ctx.route.name, ctx.event_context(), status="Failed"
                )
        return render(exc, ctx.response_headers)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error for %s %s", request.method, request.path)
        ctx = ctx_of(request)
        return render(
            InternalServerError(
                f"Encountered internal server error. Diagnostic information: tracking id '{ctx.request_id}', "
                f"request correlation id '{ctx.correlation_id}'."
            )
        )
