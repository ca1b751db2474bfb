"""Building the service once per process, lazily, from settings.

Function instances are long-lived processes that run many invocations, so the ARM session, the token cache,
the storage clients and the vault cache are built on first use and shared by every invocation. Nothing here
runs at import time: a failed import would make every function vanish, and the worker must start fast.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

    from shared.arm.client import ArmClient
    from shared.protect import Protector
    from shared.sweep import Sweeper

logger = logging.getLogger("autoprotect")

STORAGE_SETTING = "AzureWebJobsStorage"
_lock = threading.Lock()
_protector: Protector | None = None


def storage_clients(
    queue_name: str, table_name: str, environ: Mapping[str, str] | None = None
) -> tuple[QueueClient, QueueClient, TableClient]:
    """The jobs queue, its poison queue and the ledger table from the host's own storage setting.

    Locally that is a connection string; in Azure it is identity-based (`AzureWebJobsStorage__queueServiceUri`,
    `__tableServiceUri`, optional `__clientId`), exactly what the Functions host itself uses.
    """
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    env = os.environ if environ is None else environ
    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    transport: dict[str, Any] = {"transport": _pooled_transport()}
    connection = env.get(STORAGE_SETTING, "").strip()
    if connection:
        queue, poison = (
            QueueClient.from_connection_string(
                connection, name, message_encode_policy=encode, message_decode_policy=decode, **transport
            )
            for name in (queue_name, f"{queue_name}-poison")
        )
        table = TableClient.from_connection_string(connection, table_name, **transport)
        return queue, poison, table
    queue_uri = env.get(f"{STORAGE_SETTING}__queueServiceUri", "").strip()
    table_uri = env.get(f"{STORAGE_SETTING}__tableServiceUri", "").strip()
    if not queue_uri or not table_uri:
        raise RuntimeError(
            f"set {STORAGE_SETTING} (a connection string) or both {STORAGE_SETTING}__queueServiceUri and "
            f"{STORAGE_SETTING}__tableServiceUri (identity-based storage)"
        )
    credential = _credential(env.get(f"{STORAGE_SETTING}__clientId", "").strip())
    queue, poison = (
        QueueClient(queue_uri, name, credential=credential, message_encode_policy=encode, message_decode_policy=decode)
        for name in (queue_name, f"{queue_name}-poison")
    )
    table = TableClient(table_uri, table_name, credential=credential, **transport)
    return queue, poison, table


def _pooled_transport() -> Any:
    """One HTTP session for the queue and ledger clients, with room for the poller's parallel reads.

    The SDK default pool (10 connections) overflows under a batch of 16 queue invocations plus the poller.
    """
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False)


def _credential(client_id: str) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    # Managed identity in Azure (IDENTITY_ENDPOINT), developer credentials elsewhere; never interactive.
    return DefaultAzureCredential(
        managed_identity_client_id=client_id or None, exclude_interactive_browser_credential=True
    )


def arm_client(settings: Settings) -> ArmClient:
    """One ARM client per process: it holds the connection pool and the cached token."""
    from shared.arm.client import ArmClient

    return ArmClient(
        settings.arm_endpoint,
        _credential(settings.managed_identity_client_id),
        scope=settings.scope,
        pool_size=max(32, settings.poll_concurrency * 2),
    )


def operator_arm_client(settings: Settings) -> ArmClient:
    """An ARM client as the person (or pipeline) running the CLI: DefaultAzureCredential without the app's
    user-assigned identity, so destructive actions are the operator's own, in the Activity Log and in RBAC."""
    from azure.identity import DefaultAzureCredential

    from shared.arm.client import ArmClient

    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return ArmClient(settings.arm_endpoint, credential, scope=settings.scope)


def build_protector(settings: Settings, environ: Mapping[str, str] | None = None) -> Protector:
    from shared.backup import BackupApi
    from shared.jobqueue import JobQueue
    from shared.ledger import Ledger
    from shared.protect import Protector

    queue_client, poison_client, table_client = storage_clients(settings.jobs_queue, settings.ledger_table, environ)
    arm = arm_client(settings)
    queue = JobQueue(queue_client, poison_client)
    ledger = Ledger(table_client)
    queue.ensure_queue()
    ledger.ensure_table()
    notifier = None
    if settings.notify_webhook_url:
        from shared.notify import Notifier

        notifier = Notifier(settings.notify_webhook_url, settings.notify_format)
    return Protector(settings, BackupApi(arm, settings), ledger, queue, notifier=notifier)


def sweeper() -> Sweeper:
    """The reconcile sweep, sharing the process-wide ARM client, ledger and queue."""
    from shared.sweep import Sweeper

    service = protector()
    return Sweeper(service.settings, service.api, service.ledger, service.intake)


def protector() -> Protector:
    """The process-wide Protector, built on first use."""
    global _protector
    with _lock:
        if _protector is None:
            _protector = build_protector(Settings.from_env())
        return _protector


def reset() -> None:
    """Forget the process-wide service (tests change settings between runs)."""
    global _protector
    with _lock:
        _protector = None
