import json
from pathlib import Path
from typing import Any

import pytest

from shared.config import SETTING_NAMES, ConfigError, Settings
from shared.ids import ServerId
from shared.rules import RULES, RuleContext, ServerFacts, Skip, decide

from .test_ids import GOOD, SUB

REPO = Path(__file__).resolve().parents[2]
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.DataProtection/backupVaults/bv-weu"
POLICY = VAULT + "/backupPolicies/pg-weekly"
NORTH = VAULT.replace("bv-weu", "bv-neu")


def settings(**extra: str) -> Settings:
    env = {
        "AUTOPROTECT_DEFAULT_VAULT_ID": VAULT,
        "AUTOPROTECT_DEFAULT_POLICY_ID": POLICY,
        "AUTOPROTECT_SUBSCRIPTIONS": SUB,
        **extra,
    }
    return Settings.from_env(env)


def test_defaults_and_required():
    loaded = settings()
    assert loaded.optout_tag == "autoprotect"
    assert loaded.scope == "https://management.azure.com/.default"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})
    assert "AUTOPROTECT_DEFAULT_VAULT_ID is required" in str(caught.value)
    assert "AUTOPROTECT_DEFAULT_POLICY_ID is required" in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        settings(
            AUTOPROTECT_ARM_ENDPOINT="http://management.azure.com",
            AUTOPROTECT_POLL_CONCURRENCY="lots",
            AUTOPROTECT_REGION_VAULTS='{"northeurope": {"vault": "x"}}',
            AUTOPROTECT_DEFAULT_POLICY_ID=NORTH + "/backupPolicies/pg-other",
        )
    text = str(caught.value)
    for fragment in ("https origin", "AUTOPROTECT_POLL_CONCURRENCY", "exactly 'vault' and 'policy'", "not in vault"):
        assert fragment in text


def test_sample_settings_list_every_setting():
    values = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    ours = {name for name in values if name.startswith("AUTOPROTECT_")}
    assert ours == set(SETTING_NAMES)
    Settings.from_env(values)  # the sample itself is valid


def _context(loaded: Settings, vault_region: str = "westeurope") -> RuleContext:
    return RuleContext(loaded, lambda target: vault_region)


def _facts(**kw: Any) -> ServerFacts:
    base: dict[str, Any] = {"location": "West Europe", "state": "Ready", "replication_role": "Primary", "tags": {}}
    base.update(kw)
    return ServerFacts(server=ServerId.parse(GOOD), **base)


def test_rules_have_names_and_examples():
    assert [rule.name for rule in RULES] == [
        "replica", "excluded-resource-group", "opt-out-tag", "vaulted-backup-size", "region-vault", "tier-policy",
    ]  # fmt: skip
    assert all(rule.example and rule.__doc__ for rule in RULES)


def test_replica_rule():
    decision = decide(_facts(replication_role="AsyncReplica"), _context(settings()))
    assert isinstance(decision, Skip) and decision.rule == "replica"
    assert decide(_facts(replication_role="None"), _context(settings())).rule == "region-vault"


def test_servers_over_1_tb_are_skipped_unless_the_rule_is_off():
    decision = decide(_facts(storage_gb=2048), _context(settings()))
    assert isinstance(decision, Skip) and decision.rule == "vaulted-backup-size" and "1 TB" in decision.reason
    assert decide(_facts(storage_gb=1024), _context(settings())).rule == "region-vault"
    assert decide(_facts(storage_gb=2048), _context(settings(AUTOPROTECT_SKIP_OVER_1TB="false"))).rule == "region-vault"
    body = {"location": "westeurope", "properties": {"storage": {"storageSizeGB": 4096}}}
    assert ServerFacts.from_arm(ServerId.parse(GOOD), body).storage_gb == 4096
    assert (
        ServerFacts.from_arm(ServerId.parse(GOOD), {"properties": {"storage": {"storageSizeGB": "big"}}}).storage_gb
        == 0
    )


def test_opt_out_tag_rule_is_case_insensitive():
    decision = decide(_facts(tags={"AutoProtect": "OFF"}), _context(settings()))
    assert isinstance(decision, Skip) and decision.reason == "excluded by tag AutoProtect=OFF"
    assert decide(_facts(tags={"autoprotect": "on"}), _context(settings())).rule == "region-vault"


def test_region_vault_rule_prefers_overrides_and_skips_regions_without_vault():
    overrides = json.dumps({"North Europe": {"vault": NORTH, "policy": NORTH + "/backupPolicies/pg"}})
    loaded = settings(AUTOPROTECT_REGION_VAULTS=overrides)
    routed = decide(_facts(location="northeurope"), _context(loaded))
    assert not isinstance(routed, Skip) and routed.target.vault.vault == "bv-neu"
    assert not isinstance(decide(_facts(), _context(loaded)), Skip)
    skipped = decide(_facts(location="eastus"), _context(loaded))
    assert isinstance(skipped, Skip) and skipped.reason == "no vault for region eastus"


def test_excluded_resource_groups_by_pattern():
    loaded = settings(AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS="rg-sandbox-*, *-tmp")
    decision = decide(_facts(), _context(loaded))
    assert not isinstance(decision, Skip)
    sandbox = ServerFacts(ServerId.parse(GOOD.replace("rg-data", "RG-Sandbox-7")), "westeurope", "Ready", "Primary")
    skipped = decide(sandbox, _context(loaded))
    assert isinstance(skipped, Skip) and skipped.rule == "excluded-resource-group"
    assert "rg-sandbox-*" in skipped.reason


def test_opt_in_mode_protects_only_tagged_servers():
    loaded = settings(AUTOPROTECT_MODE="opt-in")
    skipped = decide(_facts(), _context(loaded))
    assert isinstance(skipped, Skip) and skipped.rule == "opt-in-tag"
    assert not isinstance(decide(_facts(tags={"AutoProtect": "ON"}), _context(loaded)), Skip)


def test_tier_tag_picks_the_policy_in_the_chosen_vault():
    loaded = settings(AUTOPROTECT_TIER_POLICIES='{"Gold": "pg-gold"}')
    gold = decide(_facts(tags={"backup-tier": "gold"}), _context(loaded))
    assert not isinstance(gold, Skip)
    assert gold.rule == "tier-policy" and gold.tier == "gold"
    assert gold.target.policy.id == VAULT + "/backupPolicies/pg-gold"
    unknown = decide(_facts(tags={"backup-tier": "platinum"}), _context(loaded))
    assert not isinstance(unknown, Skip)
    assert unknown.target.policy.id == POLICY and "no policy" in unknown.reason


def test_rule_errors_are_reported_at_start_up():
    with pytest.raises(ConfigError) as caught:
        settings(
            AUTOPROTECT_MODE="sometimes",
            AUTOPROTECT_TIER_POLICIES='{"gold": "../x"}',
            AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS="rg/../x",
            AUTOPROTECT_DRY_RUN="maybe",
        )
    text = str(caught.value)
    for fragment in ("AUTOPROTECT_MODE", "AUTOPROTECT_TIER_POLICIES['gold']", "EXCLUDED_RESOURCE_GROUPS", "DRY_RUN"):
        assert fragment in text
