"""When to retry an ARM request and for how long, kept separate from the I/O (azure-core's RetryPolicy shape).

Within one function invocation we retry only briefly: a long `Retry-After` (ARM allows ten minutes) is handed
back to the caller as `ArmUnavailable.retry_after`, and the ledger reschedules the work instead of holding a
Functions worker asleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    total: int = 4
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 8.0
    # The longest single wait we accept inside one invocation; longer waits are returned to the caller.
    max_inline_wait_s: float = 10.0

    def should_retry(self, status: int | None, *, idempotent: bool, sent: bool) -> bool:
        """A status (None = connection failure) is retried when repeating the request cannot do harm."""
        if status is None:
            return idempotent or not sent
        if status == 202:
            return False
        # A 429 means ARM did not process the request, so even a non-idempotent one may repeat.
        return status in RETRYABLE_STATUSES and (idempotent or status == 429)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter, for failures that carry no Retry-After."""
        ceiling = min(self.backoff_max_s, self.backoff_factor_s * (2 ** max(attempt - 1, 0)))
        return rng.uniform(0, ceiling)
