"""JWT-shaped bearer tokens signed with an HMAC key kept in the data dir.

Real tokens are RS256 JWTs checked against Entra ID's keys; these are opaque-but-JWT-shaped
(`base64url(header).base64url(payload).base64url(hmac)`) so the emulator can verify what it issued, clients that
peek at claims keep working, and Event Grid `claims` can be filled from the token the caller sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

ACCEPTED_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(Exception):
    """A token the emulator cannot accept; `expired` distinguishes ARM's two error codes."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class TokenIssuer:
    """Mints and verifies the emulator's bearer tokens."""

    def __init__(self, key: bytes, tenant_id: str, extra_audiences: tuple[str, ...] = ()) -> None:
        self._key = key
        self.tenant_id = tenant_id
        self.audiences = {a.lower() for a in (*ACCEPTED_AUDIENCES, *extra_audiences)}

    def mint(
        self,
        *,
        principal_id: str,
        app_id: str,
        audience: str,
        lifetime_s: float,
        identity_type: str = "app",
        name: str | None = None,
        now: float | None = None,
        superuser: bool = False,
    ) -> tuple[str, int]:
        """Return `(token, expires_on)` for a principal; `identity_type` is `app` (MSI) or `user`."""
        issued = int(now if now is not None else time.time())
        exp = int(issued + lifetime_s)
        payload: dict[str, Any] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": issued,
            "nbf": issued,
            "exp": exp,
            "oid": principal_id,
            "sub": principal_id,
            "tid": self.tenant_id,
            "appid": app_id,
            "appidacr": "2",
            "idtyp": identity_type,
            "ver": "1.0",
            "uti": _b64(hashlib.sha256(f"{principal_id}{issued}".encode()).digest()[:12]),
        }
        if name:
            payload["name"] = name
        if superuser:
            payload["emu_superuser"] = True  # bypasses opt-in caller RBAC (admin-minted tokens only)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "emulator"}).encode())
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{sig}", exp

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """Return the claims of a token this emulator issued; raise TokenError otherwise."""
        pieces = token.split(".")
        if len(pieces) != 3:
            raise TokenError("The access token is invalid.")
        header, body, sig = pieces
        expected = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, sig):
            raise TokenError("The access token is invalid.")
        try:
            claims: dict[str, Any] = json.loads(_unb64(body))
        except ValueError as exc:
            raise TokenError("The access token is invalid.") from exc
        current = now if now is not None else time.time()
        if str(claims.get("aud", "")).lower() not in self.audiences:
            raise TokenError(
                f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'."
            )
        if int(claims.get("exp", 0)) <= current:
            raise TokenError("The access token expired.", expired=True)
        return claims
