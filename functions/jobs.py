"""Queue trigger: take one server one step towards protection.

A message that can never be processed (not JSON, wrong version, invalid server ID) is moved to the poison
queue at once with its reason, instead of being retried five times. Waiting (a server not Ready yet, roles
propagating, throttling) is scheduled in the ledger, so it never burns the message's dequeue count. Only
unexpected failures raise, and the host's retries and poison queue take over.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.messages import InvalidMessage, JobMessage

bp = func.Blueprint()
logger = logging.getLogger("autoprotect.jobs")


@bp.function_name("protect_server")
@bp.queue_trigger(arg_name="message", queue_name="%AUTOPROTECT_JOBS_QUEUE%", connection="AzureWebJobsStorage")
def protect_server(message: func.QueueMessage) -> None:
    from shared import runtime

    service = runtime.protector()
    try:
        job = JobMessage.parse(message.get_body())
        out_of_scope = service.settings.scope_error(job.server.subscription_id)
        if out_of_scope:
            raise InvalidMessage(out_of_scope)
    except InvalidMessage as exc:
        logger.error("message %s rejected: %s", message.id, exc)
        service.queue.poison(message.get_body(), str(exc))
        return
    outcome = service.run_job(job)
    logger.info("job %s for %s (dequeue %s): %s", message.id, job.server, message.dequeue_count, outcome)
