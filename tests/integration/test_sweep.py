"""The reconcile sweep against the emulator: missed servers, deleted instances, tier changes, vanished servers."""

from __future__ import annotations

import json
import uuid

import pytest

from scripts.estate import DP_API, PG_API
from scripts.stack import wait_until
from shared.ledger import State

from .conftest import Stack, Webhook
from .harness import write_event

pytestmark = pytest.mark.integration


def _server(stack: Stack, **kw) -> str:
    return stack.estate.server(stack.new_group(), f"sw-{uuid.uuid4().hex[:8]}", wait=True, **kw)


def test_a_server_without_any_event_is_found_and_protected(stack: Stack):
    server = _server(stack)
    assert stack.harness.record(server) is None
    stack.harness.sweep()
    first = stack.harness.record(server)
    assert first is not None and "missed event or pre-existing" in first.transitions.get("Queued", "") + first.reason
    assert stack.harness.settle(server).state == State.PROTECTED


def test_a_deleted_instance_is_found_and_explained(stack: Stack):
    """Deleting an instance soft-deletes it (14 days by default): the sweep sees protection gone, and the new
    protection request is refused while the soft-deleted instance exists, so the server needs attention with
    the service's reason (undelete and resume it, or wait for the purge)."""
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    (instance,) = stack.instances_for(server)
    stack.estate.delete(instance["id"], DP_API)
    assert stack.instances_for(server) == []
    stack.harness.sweep()
    record = stack.harness.record(server)
    assert record is not None and record.state == State.QUEUED
    assert record.reason.startswith("backup instance missing")
    settled = stack.harness.settle(server)
    assert (settled.state, settled.error_code) == (State.NEEDS_ATTENTION, "UserErrorDppDatasourceInSoftDeletedState")
    assert stack.instances_for(server) == []


def test_a_tier_change_re_points_the_instance(clean_faults: Stack):
    stack = clean_faults
    gold = stack.estate.policy(stack.vault_id, "pg-gold")
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    stack.configure(AUTOPROTECT_TIER_POLICIES=json.dumps({"gold": "pg-gold"}))
    stack.estate.tag(server, {"backup-tier": "gold"})
    stack.harness.sweep()
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED
    assert record.policy_id.lower() == gold.lower()
    assert record.tier == "gold"
    (instance,) = stack.instances_for(server)
    assert instance["properties"]["policyInfo"]["policyId"].lower() == gold.lower()


def test_a_vanished_server_becomes_gone_on_a_second_look_and_keeps_its_backups(clean_faults: Stack):
    stack = clean_faults
    stack.configure(AUTOPROTECT_NOT_FOUND_WAIT_MINUTES="0.01")  # the two looks 0.6 s apart instead of 10 min
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    stack.estate.delete(server, PG_API)
    stack.harness.sweep()
    first = stack.harness.record(server)
    assert first is not None and first.state == State.PROTECTED and first.missing_since  # one listing is no proof

    def swept_gone() -> bool:
        stack.harness.sweep()
        record = stack.harness.record(server)
        return record is not None and record.state == State.GONE

    wait_until(swept_gone, timeout=30, what="the second look")
    record = stack.harness.record(server)
    assert record is not None and record.reason == "server no longer exists (missing from two sweeps)"
    assert len(stack.instances_for(server)) == 1  # backups exist for exactly this day


def test_a_server_opted_out_after_protection_keeps_its_backups_unmanaged(stack: Stack):
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    stack.estate.tag(server, {"autoprotect": "off"})
    stack.harness.deliver(write_event(server))  # the tag change's write event re-decides a Protected server
    record = stack.harness.settle(server)
    assert (record.state, record.rule) == (State.SKIPPED, "opt-out-tag")
    assert "protected, not managed" in record.reason
    assert len(stack.instances_for(server)) == 1  # autoprotect never deletes backups because of a tag
    stack.estate.tag(server, {})
    stack.harness.sweep()  # and the sweep notices the tag is gone
    assert stack.harness.settle(server).state == State.PROTECTED


def test_suspended_protection_is_resumed_and_told_once(stack: Stack, webhook: Webhook):
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    (instance,) = stack.instances_for(server)
    response = stack.estate.arm.post(stack.estate.arm.url_for(f"{instance['id']}/suspendBackups", DP_API), {})
    stack.estate.wait(response)
    stack.harness.sweep()
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED and "Creating" in record.transitions  # resumed through an operation
    (resumed,) = stack.instances_for(server)
    assert resumed["properties"]["currentProtectionState"] == "ProtectionConfigured"
    notes = webhook.for_server(server)
    assert len(notes) == 1 and notes[0]["errorCode"] == "ProtectionBroken"


def test_a_policy_chosen_by_a_person_is_kept_and_recorded_as_drift(clean_faults: Stack):
    stack = clean_faults
    other = stack.estate.policy(stack.vault_id, "pg-chosen")
    server = _server(stack)
    stack.harness.deliver(write_event(server))
    assert stack.harness.settle(server).state == State.PROTECTED
    (instance,) = stack.instances_for(server)
    body = {"properties": {**instance["properties"], "policyInfo": {"policyId": other}}}
    for read_only in ("protectionStatus", "currentProtectionState", "provisioningState", "protectionErrorDetails"):
        body["properties"].pop(read_only, None)
    stack.estate.wait(stack.estate.arm.put(stack.estate.arm.url_for(instance["id"], DP_API), body))
    stack.harness.deliver(write_event(server))
    record = stack.harness.settle(server)
    assert record.state == State.PROTECTED and "chosen outside autoprotect" in record.drift
    (kept,) = stack.instances_for(server)
    assert kept["properties"]["policyInfo"]["policyId"].lower() == other.lower()


def test_with_any_subscription_the_sweep_reads_the_subscriptions_from_arm(clean_faults: Stack):
    """No allow-list, scope opened on purpose: the sweep asks ARM which subscriptions the identity can read."""
    stack = clean_faults
    stack.configure(AUTOPROTECT_SUBSCRIPTIONS="", AUTOPROTECT_ANY_SUBSCRIPTION="true")
    assert stack.harness.service.settings.subscriptions_in_scope() == []
    server = _server(stack)
    stack.harness.sweep()
    record = stack.harness.record(server)
    assert record is not None and "missed event or pre-existing" in record.reason
    assert stack.harness.settle(server).state == State.PROTECTED
