"""Queue triggers of a running dev host against Azurite: delete on success, retries, poison, bad encodings."""

from __future__ import annotations

import base64
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from scripts.stack import wait_until
from tests.devhost.conftest import HOST_JSON, DevHost, http

pytestmark = pytest.mark.integration

MAX_DEQUEUE = HOST_JSON["extensions"]["queues"]["maxDequeueCount"]  # type: ignore[index]
BATCH_SIZE = HOST_JSON["extensions"]["queues"]["batchSize"]  # type: ignore[index]


def sender(host: DevHost, queue: str | None = None) -> QueueClient:
    """A client that encodes like the app's senders must: base64, as the queue trigger expects."""
    return QueueClient.from_connection_string(
        host.connection_string, queue or host.queue, message_encode_policy=TextBase64EncodePolicy()
    )


def raw(host: DevHost, queue: str) -> QueueClient:
    return QueueClient.from_connection_string(host.connection_string, queue)


def poison_contents(host: DevHost) -> list[str]:
    with raw(host, f"{host.queue}-poison") as client:
        try:
            return [str(m.content) for m in client.peek_messages(max_messages=32)]
        except ResourceNotFoundError:  # the poison queue does not exist until the first poison message
            return []


def queue_length(host: DevHost, queue: str) -> int:
    """Azurite counts leased (invisible) messages too, so 0 means deleted, not merely in flight."""
    with raw(host, queue) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def test_settings_come_from_environment_over_local_settings(devhost: DevHost) -> None:
    functions = {f["name"]: f for f in http("GET", f"{devhost.url}/admin/host/status").json()["functions"]}
    assert functions["on_job"]["queue_name"] == "devhost-jobs"  # environment wins over local.settings.json
    assert functions["tick"]["schedule"] == "*/1 * * * * *"  # only in local.settings.json


def test_message_is_processed_once_and_deleted(devhost: DevHost) -> None:
    body = f"ok-{uuid.uuid4()}"
    with sender(devhost) as client:
        sent = client.send_message(body)

    def processed() -> bool:
        return any(r["body"] == body for r in devhost.records("on_job"))

    wait_until(processed, timeout=15, what="the queue message to be processed")
    row = next(r for r in devhost.records("on_job") if r["body"] == body)
    assert row["id"] == sent.id
    assert row["dequeue_count"] == 1
    assert row["pop_receipt"]
    wait_until(lambda: queue_length(devhost, devhost.queue) == 0, timeout=10, what="the message to be deleted")
    assert [r["body"] for r in devhost.records("on_job")].count(body) == 1


def test_always_failing_message_ends_in_poison_after_max_dequeue_count(devhost: DevHost) -> None:
    body = f"fail-{uuid.uuid4()}"
    with sender(devhost) as client:
        client.send_message(body)
    encoded = base64.b64encode(body.encode()).decode()
    wait_until(lambda: encoded in poison_contents(devhost), timeout=20, what="the message in the poison queue")
    attempts = [r["dequeue_count"] for r in devhost.records("on_job") if r["body"] == body]
    assert attempts == list(range(1, MAX_DEQUEUE + 1))
    assert poison_contents(devhost).count(encoded) == 1  # same encoded body, copied once
    wait_until(lambda: queue_length(devhost, devhost.queue) == 0, timeout=10, what="the original to be deleted")
    assert "to 'devhost-jobs-poison' because it failed 3 times" in devhost.log()


def test_undecodable_message_goes_straight_to_poison(devhost: DevHost) -> None:
    text = f"not base64 !! {uuid.uuid4()}"
    with raw(devhost, devhost.queue) as client:
        sent = client.send_message(text)
    wait_until(lambda: text in poison_contents(devhost), timeout=15, what="the undecodable message in poison")
    assert all(r["id"] != sent.id for r in devhost.records("on_job"))
    assert "is not valid base64" in devhost.log()


def test_admin_runs_a_queue_function_by_hand(devhost: DevHost) -> None:
    body = f"manual-{uuid.uuid4()}"
    assert http("POST", f"{devhost.url}/admin/functions/on_job", {"input": body}).status == 202
    wait_until(lambda: any(r["body"] == body for r in devhost.records("on_job")), timeout=10, what="the manual run")
    assert http("POST", f"{devhost.url}/admin/functions/missing", {"input": ""}).status == 404


def test_batches_run_in_parallel_within_batch_size_plus_threshold(devhost: DevHost) -> None:
    tag = uuid.uuid4().hex[:8]
    bodies = [f"slow-{tag}-{i}" for i in range(10)]
    with sender(devhost) as client:
        for body in bodies:
            client.send_message(body)

    def ended() -> set[str]:
        return {r["body"] for r in devhost.records("on_job_end") if r["body"] in bodies}

    wait_until(lambda: ended() == set(bodies), timeout=20, what="the slow messages")
    starts = {r["body"]: r["at"] for r in devhost.records("on_job") if r["body"] in bodies}
    ends = {r["body"]: r["at"] for r in devhost.records("on_job_end") if r["body"] in bodies}
    peak = max(sum(1 for b in bodies if starts[b] <= starts[a] < ends[b]) for a in bodies)
    limit = BATCH_SIZE + BATCH_SIZE // 2  # newBatchThreshold defaults to batchSize / 2
    assert 2 <= peak <= limit
