"""Timer trigger: follow outstanding operations and due retries, and hand the next writes to the queue."""

from __future__ import annotations

import logging

import azure.functions as func

bp = func.Blueprint()
logger = logging.getLogger("autoprotect.poller")


@bp.function_name("poll_operations")
@bp.timer_trigger(arg_name="timer", schedule="%AUTOPROTECT_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def poll_operations(timer: func.TimerRequest) -> None:
    from shared import runtime

    if timer.past_due:
        logger.info("poller is running late")
    summary = runtime.protector().poll_due()
    if summary.due:
        logger.info("poller: %d due; %s", summary.due, summary.outcomes)
