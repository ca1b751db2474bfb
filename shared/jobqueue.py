"""Putting job messages on the queue in the encoding the Functions queue trigger expects (base64)."""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from shared.messages import JobMessage

_MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600 - 1
# A queue message may be 64 KiB once base64-encoded, so 48 KiB of UTF-8 text; keep a margin below it.
MAX_POISON_TEXT_BYTES = 45_000


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
        wrapped = poison_wrapper(body, reason)
        if self._poison is None:
            raise RuntimeError("no poison queue configured")
        with contextlib.suppress(ResourceExistsError):
            self._poison.create_queue()
        self._poison.send_message(wrapped)


def poison_wrapper(body: bytes | str, reason: str, *, limit: int = MAX_POISON_TEXT_BYTES) -> str:
    """The poison entry: the reason and as much of the original as fits the queue's limit once encoded.

    The size is measured after JSON escaping, which can grow a hostile body six-fold (a control character becomes
    `\\u0000`), so the original is cut until the whole entry fits, and the cut is said in the entry itself.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    entry: dict[str, object] = {"reason": reason[:1000], "message": text}
    keep = len(text)
    while True:
        wrapped = json.dumps(entry, separators=(",", ":"))
        if len(wrapped.encode("utf-8")) <= limit:
            return wrapped
        keep //= 2
        entry["message"] = text[:keep]
        entry["truncated"] = f"the message was {len(text)} characters; the first {keep} are kept"
