"""A tiny FunctionApp for the dev host's tests: one function per trigger kind, each recording what it saw.

Every invocation appends one JSON line to the file named by the `SAMPLE_RECORD_PATH` setting, so the test
process can watch the dev host from outside. Bodies and subjects starting with "fail" raise, to drive the
host's retry, poison and HTTP 500 paths; queue bodies starting with "slow" take a second, to show parallelism.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp()
_lock = threading.Lock()


def record(**fields: Any) -> None:
    line = json.dumps({"at": time.time(), **fields}) + "\n"
    with _lock, open(os.environ["SAMPLE_RECORD_PATH"], "a", encoding="utf-8") as handle:
        handle.write(line)


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    kind = "cloudevent" if isinstance(event, func.CloudEvent) else "eventgrid"
    subject = str(event.subject or "")
    record(fn="on_event", kind=kind, id=event.id, subject=subject, data=event.get_json())
    if subject.startswith("fail"):
        raise RuntimeError(f"asked to fail: {subject}")


@app.function_name("on_event_async")
@app.event_grid_trigger(arg_name="event")
async def on_event_async(event: func.EventGridEvent) -> None:
    await asyncio.sleep(0)
    record(fn="on_event_async", id=event.id, subject=str(event.subject or ""))


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="SampleStorage")
def on_job(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    record(fn="on_job", id=msg.id, body=body, dequeue_count=msg.dequeue_count, pop_receipt=msg.pop_receipt)
    if body.startswith("slow"):
        time.sleep(1.0)
        record(fn="on_job_end", id=msg.id, body=body)
    if body.startswith("fail"):
        raise RuntimeError(f"asked to fail: {body}")


@app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    record(fn="hello", name=req.route_params["name"], query=dict(req.params))
    return func.HttpResponse(f"hello {req.route_params['name']}", status_code=201, mimetype="text/plain")


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=True, use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    record(fn="tick", phase="start", past_due=timer.past_due)
    time.sleep(float(os.environ.get("SAMPLE_TICK_SECONDS", "0")))
    record(fn="tick", phase="end")
