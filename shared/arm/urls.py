"""Which URLs from ARM responses autoprotect will send its token to, and how a refused one is shown.

Operation URLs (`Azure-AsyncOperation`, `Location`) and list `nextLink`s arrive in responses, so they are
untrusted even though they should point back at ARM. A substring rule ("no `..`") is not enough: `%2e%2e`,
`.%2e`, U+2025 and fullwidth dots all reach the server as traversal or as something else than what was checked.
So a URL is accepted only when it is plain ASCII, on the configured origin over HTTPS, free of credentials, and
each path segment, once percent-decoded, is an ordinary name; an operation URL must moreover have one of the
path shapes Microsoft.DataProtection uses for operation status and results (from the 2026-06-01 spec).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# A decoded path segment: ARM names, api-version-free. Operation ids are base64 (with '=' and maybe '+').
_SEGMENT = re.compile(r"[A-Za-z0-9_().+=:,@~-]{1,512}")
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NAME = r"[^/]{1,260}"
_PREFIX = rf"/subscriptions/{_GUID}"
_DP = "/providers/microsoft.dataprotection"
OPERATION_PATHS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        rf"{_PREFIX}{_DP}/locations/{_NAME}/operation(status|results)/{_NAME}",
        rf"{_PREFIX}/resourcegroups/{_NAME}{_DP}/operationstatus/{_NAME}",
        # The resource-group-scoped result URL of the newer examples (stopProtection, resumeBackups, ...).
        rf"{_PREFIX}/resourcegroups/{_NAME}{_DP}/backupinstances/{_NAME}/operationresults/{_NAME}",
        rf"{_PREFIX}/resourcegroups/{_NAME}{_DP}/backupvaults/{_NAME}/operation(status|results)/{_NAME}",
        rf"{_PREFIX}/resourcegroups/{_NAME}{_DP}/backupvaults/{_NAME}/backupinstances/{_NAME}/operationresults/{_NAME}",
    )
)


class UrlRefused(ValueError):
    """The URL may not be requested; the message says why (without the URL, see `display_url`)."""


def display_url(url: object, limit: int = 200) -> str:
    """Scheme, host and path only, ASCII-escaped and cut: query strings carry SAS signatures, userinfo passwords."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme or host else parts.path
    shown = ascii(shown)[1:-1]
    return shown if len(shown) <= limit else shown[:limit] + "..."


def decoded_segments(url: str) -> list[str]:
    """The path's segments, each percent-decoded, or UrlRefused when a segment is not an ordinary name."""
    path = urlsplit(url).path
    if not path.startswith("/"):
        raise UrlRefused("path is not absolute")
    segments = []
    for raw in path[1:].split("/"):
        segment = unquote(raw, errors="strict")
        if not _SEGMENT.fullmatch(segment) or set(segment) == {"."}:
            raise UrlRefused("path segment is not a plain name (encoded, dotted or empty)")
        segments.append(segment)
    return segments


def check_url(url: str, origin: str) -> str:
    """Return `url` if the token may go there: ASCII, https on `origin`, no credentials, plain path segments."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("no URL")
    if not url.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UrlRefused("not plain ASCII")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise UrlRefused("not a URL") from exc
    if parts.scheme != "https":
        raise UrlRefused("not https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("carries credentials")
    if f"https://{parts.netloc.lower()}" != origin:
        raise UrlRefused(f"origin is not {origin}")
    if parts.fragment:
        raise UrlRefused("has a fragment")
    try:
        decoded_segments(url)
    except UnicodeDecodeError as exc:
        raise UrlRefused("path is not UTF-8 once decoded") from exc
    return url


def check_operation_url(url: str, origin: str) -> str:
    """`check_url`, and the path must be one of Data Protection's operation status or result shapes."""
    check_url(url, origin)
    path = "/" + "/".join(decoded_segments(url))
    if not any(shape.fullmatch(path) for shape in OPERATION_PATHS):
        raise UrlRefused("not an operation status or result path")
    return url


def check_next_link(url: str, first: str, origin: str) -> str:
    """`check_url`, and the page must continue the same list: the same path as the first request."""
    check_url(url, origin)
    if urlsplit(url).path.rstrip("/").lower() != urlsplit(first).path.rstrip("/").lower():
        raise UrlRefused("nextLink leaves the list it continues")
    return url
