"""Call a user function once, the way the Python worker does, and account for it.

The input is built by the azure-functions library's own converter for the trigger (the one the worker uses),
fed a `Datum` shaped like what the host sends, so functions see the same objects as in Azure. Async functions
run on the host's event loop (as in the worker); sync ones on threads. `functionTimeout` cancels an async
function, but a sync one cannot be killed from Python: it is reported as failed and logged when it overruns,
and it keeps its thread until it returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.functions import meta

from devhost.accounting import Accounting
from devhost.loader import FunctionSpec

log = logging.getLogger("devhost.invoker")


class FunctionTimeoutError(Exception):
    """The invocation ran longer than host.json `functionTimeout`."""


@dataclass(frozen=True)
class Outcome:
    invocation_id: str
    succeeded: bool
    seconds: float
    error: BaseException | None = None
    result: Any = None


def convert_input(
    trigger_type: str, datum: meta.Datum, trigger_metadata: Mapping[str, meta.Datum] | None = None
) -> Any:
    """Decode a trigger payload with the library's registered converter for that binding type."""
    registry: Any = meta._ConverterMeta
    converter: Any = registry.get(trigger_type)
    if converter is None:
        raise LookupError(f"azure-functions has no converter for {trigger_type}")
    return converter.decode(datum, trigger_metadata=dict(trigger_metadata or {}))


class Invoker:
    """Runs invocations, logs their start and end like the host, and records them in `accounting`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        accounting: Accounting,
        function_timeout: float | None,
        max_threads: int = 32,
    ) -> None:
        self._loop = loop
        self._accounting = accounting
        self._timeout = function_timeout
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="devhost-fn")
        self._running = 0
        self._running_lock = threading.Lock()
        self._idle = threading.Condition(self._running_lock)

    @property
    def running(self) -> int:
        with self._running_lock:
            return self._running

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation is in flight (graceful shutdown); False if some are still running."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, spec: FunctionSpec, value: Any, reason: str) -> Outcome:
        """From the event loop: await an invocation without blocking the loop on sync functions."""
        if spec.is_async:
            return await self._invoke_async(spec, value, reason)
        return await self._loop.run_in_executor(self._executor, self.invoke_blocking, spec, value, reason)

    def invoke_blocking(self, spec: FunctionSpec, value: Any, reason: str) -> Outcome:
        """From a worker thread (queue, timer): run the invocation and return when it is over."""
        if spec.is_async:
            return asyncio.run_coroutine_threadsafe(self._invoke_async(spec, value, reason), self._loop).result()
        invocation_id, started = self._begin(spec, reason)
        watchdog = self._watchdog(spec, invocation_id)
        try:
            result = spec.target(**{spec.arg_name: value})
        except Exception as exc:
            return self._end(spec, invocation_id, started, exc)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        elapsed = time.monotonic() - started
        if self._timeout is not None and elapsed > self._timeout:
            return self._end(spec, invocation_id, started, FunctionTimeoutError(self._timeout_message()))
        return self._end(spec, invocation_id, started, None, result)

    async def _invoke_async(self, spec: FunctionSpec, value: Any, reason: str) -> Outcome:
        invocation_id, started = self._begin(spec, reason)
        try:
            result = await asyncio.wait_for(spec.target(**{spec.arg_name: value}), timeout=self._timeout)
        except TimeoutError:
            return self._end(spec, invocation_id, started, FunctionTimeoutError(self._timeout_message()))
        except Exception as exc:
            return self._end(spec, invocation_id, started, exc)
        return self._end(spec, invocation_id, started, None, result)

    def _timeout_message(self) -> str:
        return f"Timeout value of {self._timeout:g}s (host.json functionTimeout) was exceeded"

    def _watchdog(self, spec: FunctionSpec, invocation_id: str) -> threading.Timer | None:
        if self._timeout is None:
            return None
        timer = threading.Timer(
            self._timeout,
            log.error,
            args=(
                "'Functions.%s' (Id=%s) is still running after functionTimeout %gs; a sync function "
                "cannot be stopped, it keeps its thread until it returns",
                spec.name,
                invocation_id,
                self._timeout,
            ),
        )
        timer.daemon = True
        timer.start()
        return timer

    def _begin(self, spec: FunctionSpec, reason: str) -> tuple[str, float]:
        invocation_id = str(uuid.uuid4())
        with self._running_lock:
            self._running += 1
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        return invocation_id, time.monotonic()

    def _end(
        self, spec: FunctionSpec, invocation_id: str, started: float, error: BaseException | None, result: Any = None
    ) -> Outcome:
        seconds = time.monotonic() - started
        succeeded = error is None
        self._accounting.record(spec.name, seconds, succeeded=succeeded)
        if succeeded:
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
                spec.name,
                invocation_id,
                seconds * 1000,
            )
        else:
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %r",
                spec.name,
                invocation_id,
                seconds * 1000,
                error,
                exc_info=error if not isinstance(error, FunctionTimeoutError) else None,
            )
        with self._idle:
            self._running -= 1
            self._idle.notify_all()
        return Outcome(invocation_id, succeeded, seconds, error, result)
