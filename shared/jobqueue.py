"""Putting job messages on the queue in the encoding the Functions queue trigger expects (base64)."""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from shared.messages import JobMessage

_MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600 - 1


class JobQueue:
    def __init__(self, queue: QueueClient, poison: QueueClient | None = None) -> None:
        # The client must be built with TextBase64EncodePolicy (see shared.runtime); otherwise the trigger
        # cannot decode the message and the host moves it straight to the poison queue.
        self._queue = queue
        self._poison = poison

    @property
    def name(self) -> str:
        return str(self._queue.queue_name)

    def ensure_queue(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._queue.create_queue()

    def send(self, message: JobMessage, *, delay_s: float = 0) -> None:
        delay = int(min(max(delay_s, 0), _MAX_VISIBILITY_DELAY_S))
        self._queue.send_message(message.to_json(), visibility_timeout=delay or None)

    def poison(self, body: bytes | str, reason: str) -> None:
        """Park a message that can never succeed in `<queue>-poison`, wrapped with the reason it failed."""
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        wrapped = json.dumps({"reason": reason[:1000], "message": text[:32_000]}, separators=(",", ":"))
        if self._poison is None:
            raise RuntimeError("no poison queue configured")
        with contextlib.suppress(ResourceExistsError):
            self._poison.create_queue()
        self._poison.send_message(wrapped)
