"""A dev host running tests/devhost/sample_app.py against the session's Azurite, and helpers to watch it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.stack import Child, start_devhost

HOST_JSON = {
    "version": "2.0",
    "functionTimeout": "00:00:30",
    "extensions": {
        "queues": {
            "maxPollingInterval": "00:00:00.200",
            "visibilityTimeout": "00:00:00",
            "batchSize": 4,
            "maxDequeueCount": 3,
        }
    },
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """One HTTP call that returns error statuses instead of raising, so tests assert them exactly."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback test host
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


@dataclass
class DevHost:
    child: Child
    url: str
    record_path: Path
    queue: str
    connection_string: str

    def records(self, fn: str | None = None) -> list[dict[str, Any]]:
        if not self.record_path.exists():
            return []
        rows = [json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip()]
        return [r for r in rows if fn is None or r["fn"] == fn]

    def log(self) -> str:
        return self.child.log_path.read_text(errors="replace")


def write_config(folder: Path, settings_values: dict[str, str]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    host_json = folder / "host.json"
    host_json.write_text(json.dumps(HOST_JSON))
    local_settings = folder / "local.settings.json"
    local_settings.write_text(json.dumps({"IsEncrypted": False, "Values": settings_values}))
    return host_json, local_settings


@pytest.fixture(scope="module")
def devhost(azurite: Child, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    folder = tmp_path_factory.mktemp("devhost")
    # The schedule comes only from local.settings.json; the queue name in the file loses to the environment.
    host_json, local_settings = write_config(
        folder, {"SAMPLE_SCHEDULE": "*/1 * * * * *", "SAMPLE_QUEUE": "from-file-loses"}
    )
    record_path = folder / "records.jsonl"
    settings = {
        "DEVHOST_APP": "tests.devhost.sample_app:app",
        "DEVHOST_HOST_JSON": str(host_json),
        "DEVHOST_SETTINGS": str(local_settings),
        "SampleStorage": azurite.info["connection_string"],
        "SAMPLE_QUEUE": "devhost-jobs",
        "SAMPLE_RECORD_PATH": str(record_path),
        "SAMPLE_TICK_SECONDS": "1.5",
    }
    child = start_devhost(folder / "logs", settings)
    try:
        yield DevHost(child, child.info["url"], record_path, "devhost-jobs", azurite.info["connection_string"])
    finally:
        child.stop()
