"""Stopping protection: the one destructive action, taken by an operator with their own Azure identity.

Deleting a backup instance deletes its recovery points (after the vault's soft-delete window), so the app never
does it: its vault role has no delete action, and no queue message can ask for it. The operator's CLI does it
here, with the operator's credential, so the Activity Log names the person, Resource Guard (multi-user
authorization) can stand in the way, and the ledger records who asked and why.

The ledger is written before the delete is followed (state Unprotecting, with the operation to follow), so an
interrupted CLI loses nothing: the app's poller follows the operation read-only, moves the server to
Unprotected, and notifies once, exactly as it would when the CLI finishes first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.arm.errors import ArmError
from shared.arm.lro import Outcome, PollMode, classify, polling_target
from shared.backup import BackupApi, datasource_is
from shared.config import Settings
from shared.ids import ServerId, VaultChildId, vault_of
from shared.intake import utcnow
from shared.ledger import ConcurrentUpdate, Ledger, ServerRecord, State, format_time

logger = logging.getLogger("autoprotect.unprotect")

MAX_REASON = 300


@dataclass(frozen=True)
class StopTarget:
    """The instance an operator is about to delete, read from ARM and checked to protect that server."""

    server: ServerId
    vault: VaultChildId
    instance_name: str
    protection_state: str

    def describe(self) -> str:
        state = self.protection_state or "state unknown"
        return f"backup instance {self.instance_name} in vault {self.vault.vault} ({state})"


class Unprotector:
    def __init__(
        self,
        settings: Settings,
        api: BackupApi,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.ledger = ledger
        self._now = clock
        self._sleep = sleep

    def find(self, server: ServerId) -> StopTarget | None:
        """The server's instance in one of autoprotect's vaults, or None; ArmError when ARM cannot say."""
        candidates: list[tuple[VaultChildId, str]] = []
        found = self.ledger.get(server)
        if found and found.record.vault_id and found.record.instance_name:
            candidates.append((VaultChildId.parse_vault(found.record.vault_id), found.record.instance_name))
        ours = {target.vault.key for target in self.settings.targets()}
        for instance in self.api.instances_protecting(server):
            vault_id = vault_of(str(instance.get("id") or ""))
            name = instance.get("name")
            if vault_id and vault_id.lower() in ours and isinstance(name, str):
                candidates.append((VaultChildId.parse_vault(vault_id), name))
        for vault, name in candidates:
            response = self.api.get_instance(vault, name)
            if response.status == 404:
                continue
            if response.status != 200:
                raise self.api.error_of(response)
            if not datasource_is(response.body, server):
                # Never delete on the strength of a name: the instance must say it protects this server.
                raise ArmError("InstanceMismatch", f"backup instance {name} in {vault.vault} protects another resource")
            state = str((response.body.get("properties") or {}).get("currentProtectionState") or "")
            return StopTarget(server, vault, name, state)
        return None

    def stop(self, target: StopTarget, *, caller: str, reason: str) -> str:
        """DELETE the instance and record the request; returns the operation URL to follow ("" when done)."""
        response = self.api.delete_instance(target.vault, target.instance_name)
        if response.status not in (200, 202, 204, 404):
            raise self.api.error_of(response)
        follow = polling_target(response.headers) if response.status in (200, 202) else None
        url = self.api.check_operation_url(follow.url) if follow else ""
        self._record(target, caller=caller, reason=reason, operation_url=url)
        return url

    def follow(self, url: str, *, timeout_s: float) -> ArmError | None:
        """Wait for the delete operation; None when it succeeded, the error when it failed or took too long."""
        sleep = self._sleep
        if sleep is None:
            import time

            sleep = time.sleep
        deadline = self._now() + timedelta(seconds=timeout_s)
        while True:
            response = self.api.poll(url)
            if response.status >= 400:
                return self.api.error_of(response)
            result = classify(
                PollMode.ASYNC_OPERATION, response.status, response.body, response.headers, default_retry_after=5
            )
            if result.outcome is Outcome.SUCCEEDED:
                return None
            if result.outcome is Outcome.FAILED:
                return result.error
            if self._now() + timedelta(seconds=result.retry_after_s) > deadline:
                return ArmError("StillRunning", f"the delete was still running after {timeout_s:g}s")
            sleep(min(result.retry_after_s, 30.0))

    def _record(self, target: StopTarget, *, caller: str, reason: str, operation_url: str) -> None:
        """Unprotecting, with who asked and the operation to follow; the app's poller finishes it."""
        for _ in range(5):
            now = self._now()
            found = self.ledger.get(target.server)
            record = (
                found.record
                if found
                else ServerRecord(target.server.id, State.UNPROTECTING, first_seen_at=format_time(now))
            )
            why = f"stop protection requested by {caller}" + (f": {reason[:MAX_REASON]}" if reason else "")
            record.move(State.UNPROTECTING, now, reason=why)
            record.clear_error()
            record.stopped_by = caller[:300]
            record.vault_id = target.vault.id
            record.instance_name = target.instance_name
            record.operation_url = operation_url
            record.operation_mode = PollMode.ASYNC_OPERATION.value if operation_url else ""
            record.next_check_at = format_time(now)
            try:
                if found is None:
                    if self.ledger.insert(record) is None:
                        continue
                else:
                    self.ledger.replace(record, found.etag)
            except ConcurrentUpdate:
                continue
            self.ledger.mark_due(target.server, now)
            return
        logger.warning("%s: the ledger kept changing; the stop request is not recorded", target.server)


def summary(record: ServerRecord | None) -> dict[str, Any]:
    """What the CLI prints after a stop: the ledger's view."""
    if record is None:
        return {"state": "unknown"}
    return {"state": record.state.value, "reason": record.reason, "stoppedBy": record.stopped_by}
