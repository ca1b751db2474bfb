"""Starting and stopping the dev host process: clean startup errors and a graceful, accounted shutdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from scripts.stack import Child, start_devhost, wait_until
from tests.devhost.conftest import http, write_config

pytestmark = pytest.mark.integration


def settings_for(folder: Path, azurite: Child, **extra: str) -> dict[str, str]:
    host_json, local_settings = write_config(folder, {})
    return {
        "DEVHOST_APP": "tests.devhost.sample_app:app",
        "DEVHOST_HOST_JSON": str(host_json),
        "DEVHOST_SETTINGS": str(local_settings),
        "SampleStorage": azurite.info["connection_string"],
        "SAMPLE_QUEUE": "devhost-lifecycle",
        "SAMPLE_SCHEDULE": "0 0 0 1 1 *",
        "SAMPLE_RECORD_PATH": str(folder / "records.jsonl"),
        **extra,
    }


def test_sigterm_stops_cleanly_and_logs_the_summary(azurite: Child, tmp_path: Path) -> None:
    child = start_devhost(tmp_path / "logs", settings_for(tmp_path, azurite))
    try:
        status = http("GET", f"{child.info['url']}/admin/host/status").json()
        assert status["state"] == "Running"
    finally:
        child.stop()
    assert child.process.returncode == 0
    log = child.log_path.read_text()
    summary = log.split("Invocation summary: ", 1)[1].splitlines()[0]
    document = json.loads(summary)
    assert document["functions"]["tick"]["count"] == 1  # run_on_startup only; the schedule is yearly
    assert document["peak_rss_bytes"] > 0


def test_lease_is_renewed_while_a_long_invocation_runs(azurite: Child, tmp_path: Path) -> None:
    """With a 1 s lease a 1 s function outlives it: without renewal the message would be delivered twice."""
    settings = settings_for(tmp_path, azurite, DEVHOST_QUEUE_LEASE_SECONDS="1", SAMPLE_QUEUE="devhost-lease")
    child = start_devhost(tmp_path / "logs", settings)
    records = tmp_path / "records.jsonl"

    def rows(fn: str) -> list[dict[str, Any]]:
        lines = records.read_text().splitlines() if records.exists() else []
        return [row for row in map(json.loads, lines) if row["fn"] == fn]

    try:
        encoder = TextBase64EncodePolicy()
        connection = settings["SampleStorage"]
        with QueueClient.from_connection_string(connection, "devhost-lease", message_encode_policy=encoder) as queue:
            queue.send_message("slow-lease")
            wait_until(lambda: len(rows("on_job_end")) == 1, timeout=15, what="the slow message")
            wait_until(
                lambda: queue.get_queue_properties().approximate_message_count == 0,
                timeout=10,
                what="the message to be deleted with its renewed pop receipt",
            )
        assert [r["dequeue_count"] for r in rows("on_job")] == [1]
    finally:
        child.stop()


def test_unknown_setting_in_a_binding_is_a_startup_error(azurite: Child, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, azurite)
    del settings["SAMPLE_SCHEDULE"]
    with pytest.raises(RuntimeError, match="setting 'SAMPLE_SCHEDULE'"):
        start_devhost(tmp_path / "logs", settings)
