"""Event Grid trigger: a flexible server was written somewhere in the subscriptions we watch.

Answers fast (Event Grid expects a reply within 30 s) by recording the server and enqueuing a job; the ARM
work happens in the queue function. Both delivery schemas arrive here: the azure-functions converter hands us
an EventGridEvent or a CloudEvent depending on the payload.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.events import ResourceEvent

bp = func.Blueprint()
logger = logging.getLogger("autoprotect.events")


@bp.function_name("on_resource_write")
@bp.event_grid_trigger(arg_name="event")
def on_resource_write(event: func.EventGridEvent) -> None:
    from shared import runtime

    resource_event = to_resource_event(event)
    outcome = runtime.protector().on_event(resource_event)
    logger.info("event %s: %s", resource_event.id[:100], outcome)


def to_resource_event(event: Any) -> ResourceEvent:
    """One shape for both schemas; attribute access only, so odd payloads cannot raise here."""
    cloud = isinstance(event, func.CloudEvent)
    event_type: object = event.type if cloud else getattr(event, "event_type", None)
    moment: object = event.time if cloud else getattr(event, "event_time", None)
    return ResourceEvent(
        id=str(getattr(event, "id", "") or ""),
        event_type=event_type if isinstance(event_type, str) else "",
        subject=str(getattr(event, "subject", "") or ""),
        event_time=moment.isoformat() if isinstance(moment, datetime) else "",
        data=_data(event),
    )


def _data(event: Any) -> Any:
    """The event's data, or None when it cannot be read (the event is then ignored with a reason, not retried)."""
    try:
        return event.get_json()
    except (ValueError, RecursionError):
        logger.warning("event %s: data is not readable JSON; ignored", str(getattr(event, "id", ""))[:100])
        return None
