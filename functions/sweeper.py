"""Timer trigger: the reconcile sweep (hourly by default) finds servers events missed and broken protection."""

from __future__ import annotations

import logging

import azure.functions as func

bp = func.Blueprint()
logger = logging.getLogger("autoprotect.sweep")


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule="%AUTOPROTECT_SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    from shared import runtime

    summary = runtime.sweeper().run()
    logger.info(
        "sweep done: %d servers, %d instances, actions %s", summary.servers, summary.instances, dict(summary.actions)
    )
