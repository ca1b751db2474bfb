"""Sans-IO handling of ARM long-running operations, after azure-core's ARM polling strategies.

The initial response names where to poll (`Azure-AsyncOperation`, else `Location`) and how long to wait
(`Retry-After`); each status response is classified as running, succeeded or failed. No I/O happens here: the
timer function does the GETs and stores the plain result in the ledger, so a poll can resume on any instance.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.arm.errors import ArmError

# ARM spells Canceled; Data Protection's jobs and some operations spell Cancelled. Any other status is "running",
# as ARM's async-operation contract says: the caller's deadline ends an unknown one.
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled", "cancelled"})
DEFAULT_RETRY_AFTER_S = 60.0
MAX_RETRY_AFTER_S = 600.0
_MAX_RETRY_AFTER_CHARS = 64  # an HTTP date is 29 characters


class PollMode(StrEnum):
    ASYNC_OPERATION = "azure-asyncoperation"
    LOCATION = "location"


@dataclass(frozen=True)
class PollTarget:
    """Where and how to poll an accepted operation."""

    url: str
    mode: PollMode
    retry_after_s: float


class Outcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class PollResult:
    outcome: Outcome
    retry_after_s: float
    error: ArmError | None = None
    body: Any = None


def parse_retry_after(headers: Mapping[str, str], default: float = DEFAULT_RETRY_AFTER_S) -> float:
    """Seconds to wait: whole seconds or an HTTP date, clamped to ARM's ten-minute ceiling."""
    raw = (headers.get("retry-after") or "").strip()[:_MAX_RETRY_AFTER_CHARS]
    if not raw:
        return default
    if raw.isascii() and raw.isdigit():
        # More digits than any sane wait (say 400 zeros) would overflow a float: it is simply "the longest".
        return MAX_RETRY_AFTER_S if len(raw) > 6 else min(float(raw), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(raw)
        seconds = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, OSError):
        return default
    if seconds != seconds:  # NaN cannot come from a date, but a wait must never be one
        return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def polling_target(headers: Mapping[str, str]) -> PollTarget | None:
    """The operation to follow after a 201/202, preferring Azure-AsyncOperation like ARM's own clients."""
    retry_after = parse_retry_after(headers)
    async_url = (headers.get("azure-asyncoperation") or "").strip()
    if async_url:
        return PollTarget(async_url, PollMode.ASYNC_OPERATION, retry_after)
    location = (headers.get("location") or "").strip()
    if location:
        return PollTarget(location, PollMode.LOCATION, retry_after)
    return None


def classify(
    mode: PollMode, status: int, body: Any, headers: Mapping[str, str], *, default_retry_after: float
) -> PollResult:
    """Classify one polling response. HTTP errors on the status URL itself are the caller's to handle."""
    retry_after = parse_retry_after(headers, default_retry_after)
    if mode is PollMode.LOCATION:
        if status == 202:
            return PollResult(Outcome.RUNNING, retry_after)
        if status in (200, 201, 204):
            return PollResult(Outcome.SUCCEEDED, retry_after, body=body)
        return PollResult(Outcome.FAILED, retry_after, ArmError.from_body(body, status=status, headers=headers))
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return PollResult(
            Outcome.FAILED,
            retry_after,
            ArmError(code="InvalidOperationStatus", message="operation status body has no 'status' string"),
        )
    state = body["status"].lower()
    if state not in TERMINAL_STATES:
        return PollResult(Outcome.RUNNING, retry_after, body=body)
    if state == "succeeded":
        return PollResult(Outcome.SUCCEEDED, retry_after, body=body)
    error = ArmError.from_body(body, status=status, headers=headers)
    if state in ("canceled", "cancelled") and error.code == "Unknown":
        error = ArmError(code="OperationCanceled", message="the operation was canceled")
    return PollResult(Outcome.FAILED, retry_after, error)
