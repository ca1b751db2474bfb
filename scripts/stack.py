"""Start and stop the local stack (Azurite, the emulator, the dev host) as child processes.

One launcher serves the tests, `make demo`, `make run`, `make bench` and `make chaos`, so every one of them
starts the services the same way: on free loopback ports, with logs in a folder the caller chooses, and with
readiness detected by polling a condition against a deadline (never a fixed sleep).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The event subscription's filter, as the Bicep deploys it (loadJsonContent) and the emulator applies it.
EVENT_FILTER = REPO_ROOT / "infra" / "eventgrid" / "filter.json"
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's published development account. It is documented public test data, not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """Ask the kernel for a free loopback port (the tiny reuse race is acceptable for local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds or `timeout` seconds pass; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@dataclass
class Child:
    """A started child process and the log file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)
    stop_timeout: float = 10.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        """Terminate the whole process group, escalating to SIGKILL if it does not exit in time."""
        timeout = self.stop_timeout if timeout is None else timeout
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a crashed host would die (used by chaos runs)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, stdout_pipe: bool = False
) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
    process = subprocess.Popen(  # noqa: S603 - argv is built here from fixed parts, never from input
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE if stdout_pipe else log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    return Child(name=name, process=process, log_path=log_path)


@dataclass(frozen=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table}/{DEV_ACCOUNT};"
        )


def start_azurite(
    log_dir: Path, data_dir: Path | None = None, ports: AzuritePorts | None = None, timeout: float = 60
) -> Child:
    """Start Azurite (blob, queue, table) on free ports; in memory unless `data_dir` asks for persistence."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_BIN}; run `make setup` first")
    ports = ports or AzuritePorts(free_port(), free_port(), free_port())
    argv = [
        str(AZURITE_BIN),
        "--silent",
        "--skipApiVersionCheck",
        "--disableProductStyleUrl",
        "--blobHost", "127.0.0.1", "--blobPort", str(ports.blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports.queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports.table),
    ]  # fmt: skip
    if data_dir is None:
        argv.append("--inMemoryPersistence")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--location", str(data_dir)]
    child = _spawn("azurite", argv, log_dir)
    # In memory there is nothing to flush, and Azurite lingers ~10 s after closing once a queue was used.
    child.stop_timeout = 10.0 if data_dir is not None else 1.0
    child.info = {"ports": ports, "connection_string": ports.connection_string}
    try:
        wait_until(
            lambda: not child.alive() or all(port_open(p) for p in (ports.blob, ports.queue, ports.table)),
            timeout=timeout,
            what="Azurite to listen",
        )
    except TimeoutError:
        child.stop()
        raise
    if not child.alive():
        raise RuntimeError(f"Azurite exited early:\n{child.log_tail()}")
    return child


def start_emulator(
    log_dir: Path,
    data_dir: Path,
    *,
    profile: str = "fast",
    port: int = 0,
    config: Path | None = None,
    traffic_log: Path | None = None,
    event_webhook: str | None = None,
    event_schema: str = "eventgrid",
    event_filter: Path | None = None,
    timeout: float = 60,
) -> Child:
    """Start `python -m emulator` and read its one-line JSON readiness banner from stdout.

    `event_filter` (usually EVENT_FILTER, the file the Bicep deploys) makes deliveries what Azure would send."""
    argv = [sys.executable, "-m", "emulator", "--port", str(port), "--data-dir", str(data_dir)]
    argv += ["--profile", profile]
    if config is not None:
        argv += ["--config", str(config)]
    if traffic_log is not None:
        argv += ["--traffic-log", str(traffic_log)]
    if event_webhook is not None:
        argv += ["--event-webhook", event_webhook, "--event-schema", event_schema]
    if event_filter is not None:
        argv += ["--event-filter", str(event_filter)]
    child = _spawn("emulator", argv, log_dir, stdout_pipe=True)
    assert child.process.stdout is not None
    line = _read_line_with_deadline(child, timeout)
    try:
        child.info = json.loads(line)
    except json.JSONDecodeError as exc:
        child.stop()
        raise RuntimeError(f"emulator banner is not JSON: {line!r}\n{child.log_tail()}") from exc
    return child


def _read_line_with_deadline(child: Child, timeout: float) -> str:
    import selectors

    assert child.process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(child.process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (not child.alive() and not selector.select(0)):
            child.stop()
            raise RuntimeError(f"{child.name} did not report readiness:\n{child.log_tail()}")
        if selector.select(min(remaining, 0.5)):
            chunk = os.read(child.process.stdout.fileno(), 4096)
            if not chunk:
                child.stop()
                raise RuntimeError(f"{child.name} closed stdout before readiness:\n{child.log_tail()}")
            buffer += chunk
    selector.close()
    return buffer.split(b"\n", 1)[0].decode()


def start_devhost(log_dir: Path, settings: dict[str, str], *, port: int | None = None, timeout: float = 60) -> Child:
    """Start `python -m devhost` with `settings` as app settings and wait for its HTTP port."""
    port = port or free_port()
    argv = [sys.executable, "-m", "devhost", "--port", str(port)]
    child = _spawn("devhost", argv, log_dir, env=settings)
    child.info = {"port": port, "url": f"http://127.0.0.1:{port}"}
    try:
        wait_until(lambda: not child.alive() or port_open(port), timeout=timeout, what="the dev host")
    except TimeoutError:
        child.stop()
        raise
    if not child.alive():
        raise RuntimeError(f"dev host exited early:\n{child.log_tail()}")
    return child


@contextlib.contextmanager
def running(*children: Child) -> Iterator[tuple[Child, ...]]:
    """Stop every child on exit, whatever happened (also on KeyboardInterrupt)."""
    try:
        yield children
    finally:
        for child in reversed(children):
            child.stop()
