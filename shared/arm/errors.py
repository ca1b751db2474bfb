"""One error type for everything ARM can say went wrong, from CloudError bodies and failed operations alike.

Azure Backup nests the useful part of an error: a CloudError's `error` may carry `details[]` or
`additionalInfo[].info` (a UserFacingError) with the real `code`, `message`, `recommendedAction` and
`isRetryable`. We dig it out once here so every caller sees the same flat, loggable fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_MAX_TEXT = 2000


def _text(value: object) -> str:
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, list):
        return " ".join(_text(v) for v in value if isinstance(v, str))[:_MAX_TEXT]
    return ""


@dataclass
class ArmError(Exception):
    """An ARM or Azure Backup error with the fields an operator needs to act on it."""

    code: str
    message: str
    status: int | None = None
    recommended_action: str = ""
    is_retryable: bool | None = None
    request_id: str = ""
    correlation_id: str = ""
    details: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")

    def __str__(self) -> str:
        suffix = f" (HTTP {self.status})" if self.status else ""
        return f"{self.code}: {self.message}{suffix}"

    def as_record(self) -> dict[str, str]:
        """Plain fields for the ledger (no nesting, no secrets)."""
        return {
            "code": self.code,
            "message": self.message,
            "recommended_action": self.recommended_action,
        }

    @classmethod
    def from_body(
        cls, body: object, *, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> ArmError:
        """Build from a CloudError body (`{"error": {...}}`), a bare error object, or a failed status body."""
        headers = headers or {}
        error: Any = body.get("error", body) if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        code = _text(error.get("code")) or (f"HTTP{status}" if status else "Unknown")
        message = _text(error.get("message")) or "no error message in the response"
        action = ""
        retryable: bool | None = None
        details: list[dict[str, str]] = []
        inner = _user_facing(error)
        if inner is not None:
            # The UserFacingError is the specific cause; the outer code is often generic.
            code = _text(inner.get("code")) or code
            message = _text(inner.get("message")) or message
            action = _text(inner.get("recommendedAction"))
            flag = inner.get("isRetryable")
            retryable = flag if isinstance(flag, bool) else None
        for detail in error.get("details") or []:
            if isinstance(detail, dict):
                details.append({"code": _text(detail.get("code")), "message": _text(detail.get("message"))})
        return cls(
            code=code,
            message=message,
            status=status,
            recommended_action=action,
            is_retryable=retryable,
            request_id=headers.get("x-ms-request-id", ""),
            correlation_id=headers.get("x-ms-correlation-request-id", ""),
            details=details[:10],
        )


def _user_facing(error: dict[str, Any]) -> dict[str, Any] | None:
    """The first UserFacingError-like object inside an ARM error, if the service put one there."""
    for info in error.get("additionalInfo") or []:
        if isinstance(info, dict) and isinstance(info.get("info"), dict) and info["info"].get("code"):
            found: dict[str, Any] = info["info"]
            return found
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("recommendedAction") is not None and detail.get("code"):
            return detail
    inner = error.get("innerError")
    if isinstance(inner, dict) and inner.get("code"):
        return inner
    return None


class ForeignOriginError(ArmError):
    """A URL from a response pointed away from the configured ARM origin; it was never requested."""

    def __init__(self, url: object, reason: str) -> None:
        from shared.arm.urls import display_url

        # Only scheme, host and path are kept: the query may hold a signature, the userinfo a password.
        super().__init__(code="ForeignOperationUrl", message=f"refused {display_url(url)}: {reason}")


class ArmUnavailable(ArmError):
    """Retries ran out on throttling, 5xx or connection errors; the caller should try again later."""

    def __init__(self, message: str, *, retry_after: float, status: int | None = None) -> None:
        super().__init__(code="ArmUnavailable", message=message, status=status)
        self.retry_after = retry_after
