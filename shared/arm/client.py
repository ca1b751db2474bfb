"""The ARM client every outbound management call goes through.

Four guarantees live here so no caller has to remember them:
- the bearer token only ever goes to the configured ARM origin over HTTPS (URLs that arrive in responses are
  checked by shared.arm.urls before use, redirects are never followed);
- tokens come from azure-identity and are cached until five minutes before expiry;
- transient failures are retried with backoff and `Retry-After`, and every response's request ids are logged;
- a response costs bounded memory and time: its body is streamed up to 4 MiB and parsed with depth limits,
  and each attempt has an overall deadline, so neither a huge body nor a slow trickle can hold a worker.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from azure.core.credentials import AccessToken, TokenCredential
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from shared.arm import urls
from shared.arm.errors import ArmError, ArmUnavailable, ForeignOriginError
from shared.arm.lro import parse_retry_after
from shared.arm.retry import RetryPolicy
from shared.safejson import JsonRejected, loads

logger = logging.getLogger("autoprotect.arm")

_TOKEN_REFRESH_MARGIN_S = 300
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BODY_DEPTH = 64
_READ_CHUNK = 64 * 1024


@dataclass
class ArmResponse:
    status: int
    headers: Mapping[str, str]
    body: Any
    url: str

    @property
    def request_id(self) -> str:
        return self.headers.get("x-ms-request-id", "")


@dataclass
class ArmStats:
    """Per-process counters, read by benchmarks and logged; no locking subtlety needed for monotonic ints."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    token_fetches: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class ArmClient:
    """Thread-safe; share one per process so connections and the token are reused."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        scope: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        deadline_s: float = 60.0,
        pool_size: int = 32,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        user_agent: str = "autoprotect/0.1",
        verify: str | bool | None = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"ARM endpoint must be an https origin like https://management.azure.com: {endpoint!r}")
        self.origin = f"https://{parts.netloc.lower()}"
        self._scope = scope or f"{self.origin}/.default"
        self._credential = credential
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._deadline_s = deadline_s
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._token: AccessToken | None = None
        self._token_lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False  # never pick up proxies or netrc credentials from the environment
        self._session.verify = _ca_bundle_from_env() if verify is None else verify
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        # identity: the 4 MiB cap counts bytes on the wire, so no compressed body can expand past it in memory.
        self._session.headers.update(
            {"User-Agent": user_agent, "Accept": "application/json", "Accept-Encoding": "identity"}
        )
        self.stats = ArmStats()

    # -- URLs -------------------------------------------------------------------------------------------------

    def url_for(self, path: str, api_version: str) -> str:
        """An ARM URL for a path built from validated IDs."""
        if not path.startswith("/") or ".." in path or "?" in path or "#" in path:
            raise ValueError(f"refusing to build an ARM URL from {path[:200]!r}")
        return f"{self.origin}{path}?api-version={api_version}"

    def check_url(self, url: str) -> str:
        """Accept a URL only if the token may go there (see shared.arm.urls); ForeignOriginError otherwise."""
        try:
            return urls.check_url(url, self.origin)
        except urls.UrlRefused as exc:
            raise ForeignOriginError(url, str(exc)) from exc

    def check_operation_url(self, url: str) -> str:
        """`check_url`, and the path is an operation status or result of Microsoft.DataProtection."""
        try:
            return urls.check_operation_url(url, self.origin)
        except urls.UrlRefused as exc:
            raise ForeignOriginError(url, str(exc)) from exc

    def check_next_link(self, url: str, first: str) -> str:
        """`check_url`, and the link continues the list that `first` started."""
        try:
            return urls.check_next_link(url, first, self.origin)
        except urls.UrlRefused as exc:
            raise ForeignOriginError(url, str(exc)) from exc

    # -- tokens -----------------------------------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            token = self._token
            if token is None or token.expires_on - time.time() < _TOKEN_REFRESH_MARGIN_S:
                token = self._credential.get_token(self._scope)
                self._token = token
                self.stats.token_fetches += 1
            return token.token

    def caller(self) -> str:
        """Who this client acts as, the way the Activity Log's `caller` names it (UPN or email, else the app ID).

        Read from the claims of our own token, unverified: it labels the ledger entry of an action this identity
        is about to take, and ARM's own Activity Log remains the authority.
        """
        return caller_of(self._bearer())

    # -- requests ---------------------------------------------------------------------------------------------

    def get(self, url: str) -> ArmResponse:
        return self.request("GET", url)

    def put(self, url: str, body: Any) -> ArmResponse:
        return self.request("PUT", url, body=body)

    def post(self, url: str, body: Any, *, idempotent: bool = False) -> ArmResponse:
        return self.request("POST", url, body=body, idempotent=idempotent)

    def delete(self, url: str) -> ArmResponse:
        return self.request("DELETE", url)

    def request(self, method: str, url: str, *, body: Any = None, idempotent: bool | None = None) -> ArmResponse:
        """Send one logical request with retries. Non-2xx final answers are returned, not raised.

        Raises ForeignOriginError before anything is sent if `url` leaves the ARM origin, and ArmUnavailable
        when retries run out (its `retry_after` says when to try again).
        """
        self.check_url(url)
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE", "HEAD")
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        attempt = 0
        while True:
            attempt += 1
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            self.stats.requests += 1
            self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
            try:
                raw, content = self._exchange(method, url, data, headers)
            except requests.ConnectionError as exc:
                if isinstance(exc, requests.exceptions.SSLError) and _certificate_rejected(exc):
                    # An untrusted certificate does not heal by retrying (and TLS is never given up). Other TLS
                    # errors (a reset during the handshake) are dropped connections like any other.
                    raise ArmError("TlsError", f"{method} {_path(url)}: certificate not trusted") from exc
                sent = not isinstance(exc, requests.exceptions.ConnectTimeout)
                wait = self._retry.backoff(attempt, self._rng)
                if attempt > self._retry.total or not self._retry.should_retry(None, idempotent=idempotent, sent=sent):
                    raise ArmUnavailable(f"{method} {_path(url)}: {type(exc).__name__}", retry_after=30.0) from exc
                logger.warning(
                    "ARM %s %s: %s; retry %d in %.1fs", method, _path(url), type(exc).__name__, attempt, wait
                )
                self.stats.retries += 1
                self._sleep(wait)
                continue
            except requests.Timeout as exc:
                if attempt > self._retry.total or not idempotent:
                    raise ArmUnavailable(f"{method} {_path(url)}: timed out", retry_after=30.0) from exc
                self.stats.retries += 1
                self._sleep(self._retry.backoff(attempt, self._rng))
                continue
            response = self._wrap(raw, content, url)
            if 300 <= response.status < 400:
                raise ForeignOriginError(response.headers.get("location", ""), f"ARM answered {response.status}")
            if response.status == 429:
                self.stats.throttled += 1
            if not self._retry.should_retry(response.status, idempotent=idempotent, sent=True):
                return response
            wait = parse_retry_after(response.headers, default=self._retry.backoff(attempt, self._rng))
            if attempt > self._retry.total or wait > self._retry.max_inline_wait_s:
                raise ArmUnavailable(
                    f"{method} {_path(url)}: HTTP {response.status} after {attempt} attempt(s)",
                    retry_after=max(wait, 1.0),
                    status=response.status,
                )
            logger.info(
                "ARM %s %s: HTTP %d (request %s); retry %d in %.1fs",
                method, _path(url), response.status, response.request_id, attempt, wait,
            )  # fmt: skip
            self.stats.retries += 1
            self._sleep(wait)

    def _exchange(
        self, method: str, url: str, data: str | None, headers: dict[str, str]
    ) -> tuple[requests.Response, bytes]:
        """One attempt: the response and its body, read within the size cap and the attempt's deadline.

        Raises requests.Timeout when the deadline passes (a trickle) and ArmError when the body is too large.
        """
        deadline = time.monotonic() + self._deadline_s
        raw = self._session.request(
            method, url, data=data, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
        )
        try:
            declared = raw.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _too_large(method, url, raw.status_code)
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise requests.Timeout(f"response not read within {self._deadline_s:g}s")
                try:
                    chunk = raw.raw.read1(_READ_CHUNK) if raw.raw is not None else b""
                except urllib3.exceptions.ReadTimeoutError as exc:
                    raise requests.Timeout(str(exc)) from exc
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise requests.ConnectionError(str(exc)) from exc
                if not chunk:
                    return raw, b"".join(chunks)
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large(method, url, raw.status_code)
                chunks.append(chunk)
        finally:
            raw.close()

    def _wrap(self, raw: requests.Response, content: bytes, url: str) -> ArmResponse:
        headers = CaseInsensitiveDict(raw.headers)
        body: Any = None
        if content:
            try:
                body = loads(content, max_bytes=MAX_BODY_BYTES, max_depth=MAX_BODY_DEPTH)
            except JsonRejected as exc:
                logger.warning("ARM %s: response body ignored: %s", _path(url), exc)
                body = None
        logger.debug(
            "ARM %s %s -> %d request-id=%s correlation-id=%s",
            raw.request.method if raw.request else "?", _path(url), raw.status_code,
            headers.get("x-ms-request-id", ""), headers.get("x-ms-correlation-request-id", ""),
        )  # fmt: skip
        return ArmResponse(status=raw.status_code, headers=headers, body=body, url=url)

    def error_of(self, response: ArmResponse) -> ArmError:
        return ArmError.from_body(response.body, status=response.status, headers=response.headers)

    def close(self) -> None:
        self._session.close()


def caller_of(token: str) -> str:
    """The Activity Log's caller for a bearer token: `upn`/`email` for users, the application ID for apps."""
    import base64

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return "unknown caller (token has no readable claims)"
    if not isinstance(claims, dict):
        return "unknown caller (token has no readable claims)"
    text = {k: str(v)[:200] for k, v in claims.items() if isinstance(v, str)}
    person = next((text[k] for k in ("upn", "unique_name", "email", "preferred_username") if text.get(k)), "")
    oid = text.get("oid", "")
    if person:
        return f"{person} (object {oid})" if oid else person
    app = text.get("appid") or text.get("azp") or ""
    return f"application {app} (object {oid})" if app else f"object {oid or 'unknown'}"


def _certificate_rejected(exc: BaseException) -> bool:
    """True when TLS failed because the peer's certificate was not trusted, not because the line dropped."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (nested[0] if nested else current.__cause__)
    return False


def _path(url: str) -> str:
    """The path of a URL for logs: no query string (it may carry a SAS on other services), bounded."""
    return urls.display_url(urlsplit(url).path, limit=300)


def _too_large(method: str, url: str, status: int) -> ArmError:
    return ArmError(
        "ResponseTooLarge", f"{method} {_path(url)}: response body over {MAX_BODY_BYTES} bytes; not read", status
    )


def _ca_bundle_from_env() -> str | bool:
    """Honour REQUESTS_CA_BUNDLE (how the local emulator's CA is trusted) without trusting any other env."""
    import os

    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
