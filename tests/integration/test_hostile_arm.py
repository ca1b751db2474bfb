"""Odd and hostile ARM answers over a real HTTPS connection: bounded memory and time, a reason, never a crash.

Real ARM does not send these, so the emulator does not either (docs/EMULATOR.md keeps it to real behaviour);
a small local HTTPS server stands in for a broken or malicious endpoint at the configured ARM origin.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.core.credentials import AccessToken

from shared.arm.client import MAX_BODY_BYTES, ArmClient
from shared.arm.errors import ArmError, ArmUnavailable, ForeignOriginError
from shared.arm.lro import MAX_RETRY_AFTER_S
from shared.arm.retry import RetryPolicy

SUB = "2f6ea5f6-2a3c-4b2a-9d4e-0c1b2a3d4e5f"


class _Credential:
    """A fixed token: these tests are about what comes back, not about how the token was obtained."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("hostile-test-token", int(time.time()) + 3600)


@dataclass
class Behaviour:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    stream_bytes: int = 0  # send this many bytes of filler, chunked, with no Content-Length
    declare_length: int = 0  # claim this Content-Length, then send nothing
    trickle: int = 0  # send this many bytes, one every 50 ms
    sent: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour = Behaviour()

    def do_GET(self) -> None:
        plan = _Handler.behaviour
        self.send_response(plan.status)
        for name, value in plan.headers.items():
            self.send_header(name, value)
        try:
            if plan.stream_bytes:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"[" * 65536
                while plan.sent < plan.stream_bytes:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    plan.sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            elif plan.declare_length:
                self.send_header("Content-Length", str(plan.declare_length))
                self.end_headers()
            elif plan.trickle:
                self.send_header("Content-Length", str(plan.trickle))
                self.end_headers()
                for _ in range(plan.trickle):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    plan.sent += 1
                    time.sleep(0.05)  # the hostile server's pace, not a wait in the test
            else:
                self.send_header("Content-Length", str(len(plan.body)))
                self.end_headers()
                self.wfile.write(plan.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client hung up, which is what these tests want

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Hostile:
    origin: str
    ca_file: str

    def client(self, **kwargs: Any) -> ArmClient:
        options: dict[str, Any] = {"retry": RetryPolicy(total=1), "sleep": lambda _s: None, "verify": self.ca_file}
        options.update(kwargs)
        return ArmClient(self.origin, _Credential(), **options)

    def url(self, path: str = f"/subscriptions/{SUB}/resourceGroups") -> str:
        return f"{self.origin}{path}?api-version=2022-09-01"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = Path(tmp_path_factory.mktemp("hostile")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Hostile(f"https://127.0.0.1:{server.server_address[1]}", str(ca_file))
    finally:
        server.shutdown()


def _serve(**kwargs: Any) -> Behaviour:
    _Handler.behaviour = Behaviour(**kwargs)
    return _Handler.behaviour


def test_a_body_of_brackets_is_ignored_not_recursed(hostile: Hostile):
    _serve(body=b"[" * 100_000)
    response = hostile.client().get(hostile.url())
    assert response.status == 200 and response.body is None


def test_an_endless_body_is_cut_at_the_cap(hostile: Hostile):
    plan = _serve(stream_bytes=200 * 1024 * 1024)
    with pytest.raises(ArmError) as caught:
        hostile.client().get(hostile.url())
    assert caught.value.code == "ResponseTooLarge"
    # The client stopped reading at the cap; the server got no further than what the socket buffers took.
    assert plan.sent < 40 * 1024 * 1024
    assert MAX_BODY_BYTES == 4 * 1024 * 1024


def test_a_declared_huge_body_is_refused_before_reading(hostile: Hostile):
    _serve(declare_length=200 * 1024 * 1024)
    with pytest.raises(ArmError) as caught:
        hostile.client().get(hostile.url())
    assert caught.value.code == "ResponseTooLarge"


def test_a_trickle_cannot_hold_a_worker(hostile: Hostile):
    plan = _serve(trickle=400)  # 20 s at the server's pace; each read is well inside the per-read timeout
    with pytest.raises(ArmUnavailable, match="timed out"):
        hostile.client(deadline_s=0.5).get(hostile.url())
    assert plan.sent < 400


def test_retry_after_with_four_hundred_zeros_is_handed_back_as_the_longest_wait(hostile: Hostile):
    _serve(status=503, headers={"Retry-After": "1" + "0" * 400}, body=b"{}")
    with pytest.raises(ArmUnavailable) as caught:
        hostile.client().get(hostile.url())
    assert caught.value.retry_after == MAX_RETRY_AFTER_S


def test_a_redirect_is_never_followed(hostile: Hostile):
    _serve(status=302, headers={"Location": "https://evil.example/steal?sig=abc"}, body=b"")
    with pytest.raises(ForeignOriginError) as caught:
        hostile.client().get(hostile.url())
    assert "sig=" not in caught.value.message


def test_a_traversing_next_link_is_refused(hostile: Hostile):
    from shared.backup import BackupApi
    from shared.config import Settings

    vault = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/bv"
    settings = Settings.from_env(
        {
            "AUTOPROTECT_DEFAULT_VAULT_ID": vault,
            "AUTOPROTECT_DEFAULT_POLICY_ID": vault + "/backupPolicies/pg",
            "AUTOPROTECT_SUBSCRIPTIONS": SUB,
            "AUTOPROTECT_ARM_ENDPOINT": hostile.origin,
        }
    )
    link = f"{hostile.origin}/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/flexibleServers/%2e%2e/%2e%2e"
    _serve(body=b'{"value": [], "nextLink": "' + link.encode() + b'?$skiptoken=1"}')
    with pytest.raises(ForeignOriginError, match="plain name"):
        list(BackupApi(hostile.client(), settings).list_servers(SUB))
