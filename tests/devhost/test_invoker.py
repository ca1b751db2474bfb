"""The invoker in-process: sync and async functions, failures, and functionTimeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devhost.accounting import Accounting
from devhost.invoker import FunctionTimeoutError, Invoker
from devhost.loader import QUEUE, FunctionSpec


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread, as the dev host's main loop is for worker threads."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def spec(target: Callable[..., Any]) -> FunctionSpec:
    return FunctionSpec(
        name=target.__name__,
        trigger_type=QUEUE,
        arg_name="msg",
        binding={},
        target=target,
        is_async=asyncio.iscoroutinefunction(target),
    )


def test_sync_and_async_results_and_failures_are_accounted(loop: asyncio.AbstractEventLoop) -> None:
    accounting = Accounting(["ok", "boom", "later"])
    invoker = Invoker(loop, accounting, function_timeout=5)

    def ok(msg: str) -> str:
        return msg.upper()

    def boom(msg: str) -> None:
        raise ValueError(msg)

    async def later(msg: str) -> str:
        await asyncio.sleep(0.01)
        return msg * 2

    assert invoker.invoke_blocking(spec(ok), "a", "test").result == "A"
    failed = invoker.invoke_blocking(spec(boom), "b", "test")
    assert not failed.succeeded
    assert isinstance(failed.error, ValueError)
    assert invoker.invoke_blocking(spec(later), "c", "test").result == "cc"
    functions = accounting.snapshot()["functions"]
    assert (functions["ok"]["count"], functions["boom"]["failures"], functions["later"]["count"]) == (1, 1, 1)
    invoker.shutdown()


def test_function_timeout_cancels_async_and_fails_sync(loop: asyncio.AbstractEventLoop) -> None:
    invoker = Invoker(loop, Accounting([]), function_timeout=0.1)

    async def hangs(msg: str) -> None:
        await asyncio.sleep(30)

    def overruns(msg: str) -> None:
        time.sleep(0.3)

    started = time.monotonic()
    outcome = invoker.invoke_blocking(spec(hangs), "x", "test")
    assert isinstance(outcome.error, FunctionTimeoutError)
    assert time.monotonic() - started < 5
    outcome = invoker.invoke_blocking(spec(overruns), "x", "test")  # cannot be stopped, only reported
    assert isinstance(outcome.error, FunctionTimeoutError)
    assert invoker.wait_idle(1)
    invoker.shutdown()
