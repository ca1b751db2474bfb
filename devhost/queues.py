"""Queue triggers: poll Azure Storage (Azurite) with the Functions host's receive, retry and poison rules.

What the host does, and so what this does: receive up to `batchSize` messages under a long lease (renewed
while an invocation runs), fetch the next batch once in-flight work drops to `newBatchThreshold`, decode
base64 bodies (an undecodable body goes straight to `<queue>-poison`), delete on success, and on failure
either make the message visible again after `visibilityTimeout` or, at `maxDequeueCount`, copy it verbatim to
`<queue>-poison` and delete it. Empty polls back off exponentially up to `maxPollingInterval`.
Delivery is at least once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions import meta
from azure.storage.queue import QueueClient, QueueMessage

from devhost.invoker import Invoker, convert_input
from devhost.loader import QUEUE, FunctionSpec
from devhost.settings import ConfigError, QueueOptions

log = logging.getLogger("devhost.queues")

# The host receives under a 10-minute visibility timeout and renews it at half-time. A crashed host's messages
# therefore come back only after it expires; DEVHOST_QUEUE_LEASE_SECONDS shortens it for crash drills.
LEASE_SECONDS = 600
MIN_POLLING_SECONDS = 0.1


def connection_string(name: str, settings: Mapping[str, str], *, where: str) -> str:
    """The host looks a connection up as the setting itself, then with the `AzureWebJobs` prefix."""
    for key in (name, f"AzureWebJobs{name}"):
        value = settings.get(key)
        if value:
            return value
    if any(key.startswith(f"{name}__") for key in settings):
        raise ConfigError(f"{where}: identity-based connection '{name}__*' is not supported by the dev host")
    raise ConfigError(f"{where}: connection setting '{name}' is not defined")


def decode_body(raw: str, encoding: str) -> bytes | None:
    """The message bytes, or None when the body is not valid base64 (the host then poisons it at once)."""
    if encoding == "none":
        return raw.encode("utf-8")
    try:
        return base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _iso(value: datetime | None) -> meta.Datum | None:
    return None if value is None else meta.Datum(json.dumps(value.isoformat()), "json")


def trigger_input(message: QueueMessage, body: bytes) -> Any:
    """Build the function's `QueueMessage` through the library converter, from host-shaped metadata."""
    try:
        datum = meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        datum = meta.Datum(body, "bytes")
    fields = {
        "Id": meta.Datum(message.id, "string"),
        "PopReceipt": meta.Datum(message.pop_receipt, "string") if message.pop_receipt else None,
        "DequeueCount": meta.Datum(str(message.dequeue_count), "json"),
        "InsertionTime": _iso(message.inserted_on),
        "ExpirationTime": _iso(message.expires_on),
        "NextVisibleTime": _iso(message.next_visible_on),
    }
    return convert_input(QUEUE, datum, {k: v for k, v in fields.items() if v is not None})


@dataclass
class _Lease:
    message_id: str
    pop_receipt: str
    renew_at: float


class QueueListener:
    """One polling loop per queue-triggered function, with a bounded pool of invocation threads."""

    def __init__(
        self,
        spec: FunctionSpec,
        options: QueueOptions,
        connection: str,
        invoker: Invoker,
        *,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self.spec = spec
        self.queue_name = str(spec.properties["queue_name"])
        self._options = options
        self._invoker = invoker
        self._lease_seconds = lease_seconds
        self._queue = QueueClient.from_connection_string(connection, self.queue_name)
        self._poison = QueueClient.from_connection_string(connection, f"{self.queue_name}-poison")
        self._poison_ready = False
        self._pool = ThreadPoolExecutor(
            max_workers=options.batch_size + options.new_batch_threshold,
            thread_name_prefix=f"devhost-q-{spec.name}",
        )
        self._stop = threading.Event()
        self._in_flight = 0
        self._slots = threading.Condition()
        self._leases: dict[str, _Lease] = {}
        self._leases_lock = threading.Lock()
        self._poller = threading.Thread(target=self._poll_loop, name=f"devhost-poll-{spec.name}", daemon=True)
        self._renewer = threading.Thread(target=self._renew_loop, name=f"devhost-renew-{spec.name}", daemon=True)

    def start(self) -> None:
        """Create the queue if missing (the host does) and start polling."""
        with contextlib.suppress(ResourceExistsError):
            self._queue.create_queue()
        self._poller.start()
        self._renewer.start()
        log.info("Listening on queue '%s' for %s", self.queue_name, self.spec.name)

    def stop(self, timeout: float) -> None:
        """Stop polling, let running invocations finish for up to `timeout` seconds."""
        self._stop.set()
        with self._slots:
            self._slots.notify_all()
        self._poller.join(timeout)
        self._pool.shutdown(wait=False)  # never more submitted than workers, so none is queued
        deadline = time.monotonic() + timeout
        with self._slots:
            while self._in_flight and time.monotonic() < deadline:
                self._slots.wait(max(0.0, deadline - time.monotonic()))
            drained = self._in_flight == 0
        self._renewer.join(2)
        if drained:  # an abandoned invocation still needs its client to settle the message
            self._queue.close()
            self._poison.close()

    def _poll_loop(self) -> None:
        """The host's loop: after a non-empty batch, poll again as soon as in-flight work allows; back off when
        empty (from the minimum right after messages, doubling up to maxPollingInterval)."""
        options = self._options
        floor = min(MIN_POLLING_SECONDS, options.max_polling_interval)
        delay = floor
        found_since_delay = False
        while not self._stop.is_set():
            with self._slots:
                while self._in_flight > options.new_batch_threshold and not self._stop.is_set():
                    self._slots.wait()
            if self._stop.is_set():
                break
            try:
                messages = list(
                    self._queue.receive_messages(
                        messages_per_page=options.batch_size,
                        max_messages=options.batch_size,
                        visibility_timeout=self._lease_seconds,
                    )
                )
            except Exception as exc:  # storage hiccups must not kill the listener; the host logs and backs off
                log.warning("receiving from '%s' failed: %r", self.queue_name, exc)
                messages = []
            for message in messages:
                with self._slots:
                    self._in_flight += 1
                self._pool.submit(self._process, message)
            if messages:
                found_since_delay = True
                continue
            delay = floor if found_since_delay else min(delay * 2, options.max_polling_interval)
            found_since_delay = False
            self._stop.wait(delay)

    def _renew_loop(self) -> None:
        while not (self._stop.is_set() and self._in_flight == 0):
            if self._stop.is_set():
                time.sleep(0.2)  # draining: keep renewing until the last invocation ends
            else:
                self._stop.wait(min(1.0, self._lease_seconds / 4))
            now = time.monotonic()
            with self._leases_lock:
                due = [lease for lease in self._leases.values() if lease.renew_at <= now]
            for lease in due:
                self._renew(lease)

    def _renew(self, lease: _Lease) -> None:
        with self._leases_lock:
            if lease.message_id not in self._leases:
                return
            try:
                receipt = self._queue.update_message(
                    lease.message_id, lease.pop_receipt, visibility_timeout=self._lease_seconds
                )
            except Exception as exc:
                log.warning("renewing the lease on message %s failed: %r", lease.message_id, exc)
                return
            lease.pop_receipt = str(receipt.pop_receipt)
            lease.renew_at = time.monotonic() + self._lease_seconds / 2

    def _process(self, message: QueueMessage) -> None:
        lease = _Lease(str(message.id), str(message.pop_receipt), time.monotonic() + self._lease_seconds / 2)
        with self._leases_lock:
            self._leases[lease.message_id] = lease
        try:
            self._handle(message, lease)
        except Exception:
            log.exception("handling message %s from '%s' failed", message.id, self.queue_name)
        finally:
            with self._leases_lock:
                self._leases.pop(lease.message_id, None)
            with self._slots:
                self._in_flight -= 1
                self._slots.notify_all()

    def _handle(self, message: QueueMessage, lease: _Lease) -> None:
        limit = self._options.max_dequeue_count
        if message.dequeue_count is not None and message.dequeue_count > limit:
            self._to_poison(message, lease, f"dequeue count {message.dequeue_count} is over {limit}")
            return
        body = decode_body(str(message.content), self._options.message_encoding)
        if body is None:
            self._to_poison(message, lease, "its body is not valid base64 (messageEncoding is base64)")
            return
        value = trigger_input(message, body)
        outcome = self._invoker.invoke_blocking(
            self.spec, value, reason=f"New queue message detected on '{self.queue_name}'."
        )
        with self._leases_lock:  # stop renewing before acting on the receipt
            self._leases.pop(lease.message_id, None)
        if outcome.succeeded:
            self._tolerant(self._queue.delete_message, lease, "delete")
        elif (message.dequeue_count or 0) >= limit:
            self._to_poison(message, lease, f"it failed {message.dequeue_count} times (maxDequeueCount {limit})")
        else:
            visibility = round(self._options.visibility_timeout)
            self._tolerant(self._queue.update_message, lease, "release", visibility_timeout=visibility)

    def _tolerant(self, action: Any, lease: _Lease, what: str, **kwargs: Any) -> None:
        """Like the host, ignore a message that is gone or was taken over (pop receipt mismatch)."""
        try:
            action(lease.message_id, lease.pop_receipt, **kwargs)
        except ResourceNotFoundError:
            log.debug("cannot %s message %s: it or its queue is gone", what, lease.message_id)
        except HttpResponseError as exc:
            if exc.status_code != 400 or "popreceipt" not in str(getattr(exc, "error_code", "") or "").lower():
                raise
            log.debug("cannot %s message %s: its pop receipt no longer matches", what, lease.message_id)

    def _to_poison(self, message: QueueMessage, lease: _Lease, why: str) -> None:
        log.warning(
            "Moving message %s from '%s' to '%s-poison' because %s", message.id, self.queue_name, self.queue_name, why
        )
        if not self._poison_ready:
            with contextlib.suppress(ResourceExistsError):
                self._poison.create_queue()
            self._poison_ready = True
        with self._leases_lock:
            self._leases.pop(lease.message_id, None)
        self._poison.send_message(message.content)
        self._tolerant(self._queue.delete_message, lease, "delete")
