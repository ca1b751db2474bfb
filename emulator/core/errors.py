"""Typed ARM errors, raised by models and middleware and rendered once as CloudError JSON.

Each class carries ARM's real error code and HTTP status, so a model states *what* went wrong and the error
middleware alone decides *how* it looks on the wire (`{"error": {"code", "message", ...}}`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ArmError(Exception):
    """Base class: an ARM CloudError with a status, a code, a message and optional extra headers/details."""

    status = 400
    code = "BadRequest"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        additional_info: list[dict[str, Any]] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.details = details
        self.additional_info = additional_info
        self.target = target

    def body(self) -> dict[str, Any]:
        """The CloudError JSON body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details is not None:
            error["details"] = self.details
        if self.additional_info is not None:
            error["additionalInfo"] = self.additional_info
        return {"error": error}


class BadRequest(ArmError):
    status = 400
    code = "BadRequest"


class InvalidRequestContent(ArmError):
    status = 400
    code = "InvalidRequestContent"


class MissingApiVersion(ArmError):
    status = 400
    code = "MissingApiVersionParameter"


class InvalidApiVersion(ArmError):
    status = 400
    code = "InvalidApiVersionParameter"


class AuthenticationFailed(ArmError):
    status = 401
    code = "AuthenticationFailed"


class InvalidAuthenticationToken(ArmError):
    status = 401
    code = "InvalidAuthenticationToken"


class ExpiredAuthenticationToken(ArmError):
    status = 401
    code = "ExpiredAuthenticationToken"


class InvalidSubscriptionId(ArmError):
    status = 400
    code = "InvalidSubscriptionId"


class ResourceGroupNotFound(ArmError):
    status = 404
    code = "ResourceGroupNotFound"


class ResourceNotFound(ArmError):
    status = 404
    code = "ResourceNotFound"


class InvalidResourceType(ArmError):
    status = 404
    code = "InvalidResourceType"


class Conflict(ArmError):
    status = 409
    code = "Conflict"


class Throttled(ArmError):
    status = 429
    code = "SubscriptionRequestsThrottled"


class InternalServerError(ArmError):
    status = 500
    code = "InternalServerError"


class ServiceUnavailable(ArmError):
    status = 503
    code = "ServiceUnavailable"


def user_facing_info(code: str, message: str, recommended_action: str, *, retryable: bool) -> dict[str, Any]:
    """Data Protection's `additionalInfo` entry (`type: UserFacingError`) with the fields clients read."""
    return {
        "type": "UserFacingError",
        "info": {
            "code": code,
            "message": message,
            "recommendedAction": [recommended_action],
            "isRetryable": retryable,
            "isUserError": True,
            "target": "",
            "properties": {},
            "innerError": None,
        },
    }


def render(exc: ArmError, base_headers: dict[str, str] | None = None) -> web.Response:
    """The one place a CloudError becomes an HTTP response."""
    headers = {**(base_headers or {}), **exc.headers}
    if exc.code in ("InvalidAuthenticationToken", "ExpiredAuthenticationToken", "AuthenticationFailed"):
        headers.setdefault(
            "WWW-Authenticate",
            'Bearer authorization_uri="https://login.microsoftonline.com/", error="invalid_token", '
            f'error_description="{exc.message}"',
        )
    return web.Response(
        status=exc.status,
        body=json.dumps(exc.body()).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
