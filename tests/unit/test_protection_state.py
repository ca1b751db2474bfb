"""Every currentProtectionState the spec names has a verdict; the vault identity the app backs up with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.backup import VaultIdentity, backup_instance
from shared.ids import ServerId
from shared.protection_state import RESUME_ACTION, VERDICTS, Verdict, verdict
from shared.rules import ServerFacts

from .test_config_and_rules import POLICY, settings
from .test_ids import GOOD

SPEC = (
    Path(__file__).resolve().parents[3] / "shared" / "specs" / "specification" / "dataprotection" / "resource-manager"
    / "Microsoft.DataProtection" / "DataProtection" / "stable" / "2026-06-01" / "dataprotection.json"
)  # fmt: skip
UAMI = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/backup"


def test_every_state_of_the_spec_has_a_verdict() -> None:
    if not SPEC.exists():
        pytest.skip(f"Azure REST specs not found at {SPEC} (they live beside the repo in ../shared/specs)")
    enum = json.loads(SPEC.read_text())["definitions"]["CurrentProtectionState"]["enum"]
    assert {value.lower() for value in enum} == set(VERDICTS)


@pytest.mark.parametrize(
    ("state", "expected"),
    [("ProtectionConfigured", Verdict.PROTECTED), ("UpdatingProtection", Verdict.CONFIGURING),
     ("BackupSchedulesSuspended", Verdict.SUSPENDED), ("RetentionSchedulesSuspended", Verdict.SUSPENDED),
     ("ProtectionStopped", Verdict.STOPPED), ("SoftDeleted", Verdict.DELETING), ("ProtectionError", Verdict.FAILED),
     ("protectionconfigured", Verdict.PROTECTED), ("SomethingNew", Verdict.UNKNOWN), (None, Verdict.UNKNOWN)],
)  # fmt: skip
def test_verdicts(state: object, expected: Verdict) -> None:
    assert verdict(state) is expected


def test_only_stopped_and_suspended_are_resumed() -> None:
    assert RESUME_ACTION == {Verdict.SUSPENDED: "resumeBackups", Verdict.STOPPED: "resumeProtection"}


def test_the_system_identity_wins_and_a_user_assigned_one_is_sent_as_identity_details() -> None:
    both = {"identity": {"principalId": "sys", "userAssignedIdentities": {UAMI: {"principalId": "uami"}}}}
    assert VaultIdentity.of(both) == VaultIdentity("sys")
    only_user = {"identity": {"type": "UserAssigned", "userAssignedIdentities": {UAMI: {"principalId": "uami"}}}}
    identity = VaultIdentity.of(only_user)
    assert identity == VaultIdentity("uami", UAMI)
    target = settings().default_target
    facts = ServerFacts(ServerId.parse(GOOD), "westeurope", "Ready", "Primary")
    body = backup_instance(facts, target, identity)
    assert body["identityDetails"] == {"useSystemAssignedIdentity": False, "userAssignedIdentityArmUrl": UAMI}
    assert "identityDetails" not in backup_instance(facts, target, VaultIdentity("sys"))
    assert body["policyInfo"]["policyId"] == POLICY
    assert VaultIdentity.of({"identity": "odd"}) == VaultIdentity.of(None) == VaultIdentity("")
