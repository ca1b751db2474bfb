"""The decision rules: small registered units, each with a name, an example and its own test.

A rule looks at the server as ARM reports it (never at the event body) and either skips it, with the reason a
person will read, or routes it to a vault and policy. Rules run in registration order and the first decision
wins; the ledger records which rule decided, so every skip is explained.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.config import Settings, VaultTarget, normalize_region
from shared.ids import ServerId, VaultChildId

PRIMARY_ROLES = frozenset({"", "none", "primary"})
STOPPED_STATES = frozenset({"stopped", "stopping"})
MAX_VAULTED_GB = 1024


@dataclass(frozen=True)
class ServerFacts:
    """What ARM says about a server (GET flexibleServers/{name})."""

    server: ServerId
    location: str
    state: str
    replication_role: str
    tags: Mapping[str, str] = field(default_factory=dict)
    storage_gb: int = 0

    @classmethod
    def from_arm(cls, server: ServerId, body: Any) -> ServerFacts:
        body = body if isinstance(body, dict) else {}
        properties = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        tags = body.get("tags") if isinstance(body.get("tags"), dict) else {}
        return cls(
            server=server,
            location=str(body.get("location") or ""),
            state=str(properties.get("state") or ""),
            replication_role=str(properties.get("replicationRole") or ""),
            tags={str(k): str(v) for k, v in tags.items()},
            storage_gb=_storage_gb(properties.get("storage")),
        )

    @property
    def ready(self) -> bool:
        return self.state.lower() == "ready"

    @property
    def stopped(self) -> bool:
        """Stopped (or stopping) by a person or a schedule: it will start again, so waiting has no deadline."""
        return self.state.lower() in STOPPED_STATES


def _storage_gb(storage: Any) -> int:
    size = storage.get("storageSizeGB") if isinstance(storage, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 10**7 else 0


@dataclass(frozen=True)
class Skip:
    rule: str
    reason: str


@dataclass(frozen=True)
class Route:
    rule: str
    target: VaultTarget
    reason: str
    tier: str = ""


Decision = Skip | Route


@dataclass(frozen=True)
class RuleContext:
    settings: Settings
    vault_location: Callable[[VaultTarget], str]


class Rule:
    """Base of all rules; subclasses set `name` and `example` and implement `evaluate`."""

    name: ClassVar[str]
    example: ClassVar[str]

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        """Skip the server, route it (or refine the route so far), or say nothing (None)."""
        raise NotImplementedError


RULES: list[Rule] = []


def register(rule_class: type[Rule]) -> type[Rule]:
    RULES.append(rule_class())
    return rule_class


@register
class ReplicaRule(Rule):
    """Azure Backup protects primary servers only; a read replica has no backups of its own to take."""

    name = "replica"
    example = "replicationRole=AsyncReplica -> Skipped: read replicas cannot be protected"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        if facts.replication_role.lower() in PRIMARY_ROLES:
            return None
        return Skip(self.name, f"read replica (replicationRole {facts.replication_role}); protect its primary")


@register
class ExcludedResourceGroupRule(Rule):
    """Whole resource groups (sandboxes, CI) are left alone by name pattern."""

    name = "excluded-resource-group"
    example = "AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS=rg-sandbox-* and server in rg-sandbox-42 -> Skipped"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        group = facts.server.resource_group.lower()
        for pattern in context.settings.excluded_resource_groups:
            if fnmatch.fnmatchcase(group, pattern):
                return Skip(
                    self.name, f"resource group {facts.server.resource_group} matches excluded pattern {pattern}"
                )
        return None


@register
class OptOutTagRule(Rule):
    """Opt-out mode: teams exclude a server with a tag. Opt-in mode: only tagged servers are protected."""

    name = "opt-out-tag"
    example = "tag autoprotect=off -> Skipped: excluded by tag autoprotect=off"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        settings = context.settings
        if settings.mode == "opt-in":
            if _has_tag(facts, settings.optin_tag, settings.optin_value):
                return None
            return Skip("opt-in-tag", f"opt-in mode and no tag {settings.optin_tag}={settings.optin_value}")
        wanted_tag, wanted_value = settings.optout_tag.lower(), settings.optout_value.lower()
        for tag, value in facts.tags.items():
            if tag.lower() == wanted_tag and value.lower() == wanted_value:
                return Skip(self.name, f"excluded by tag {tag}={value}")
        return None


def _has_tag(facts: ServerFacts, name: str, value: str) -> bool:
    return any(t.lower() == name.lower() and v.lower() == value.lower() for t, v in facts.tags.items())


@register
class VaultedBackupSizeRule(Rule):
    """Vaulted backups support servers up to 1 TB: Azure configures protection on a larger one, then fails every
    backup job (support matrix). Skipping says so up front instead of reporting it protected. Switchable with
    AUTOPROTECT_SKIP_OVER_1TB=false, for when the limit is raised."""

    name = "vaulted-backup-size"
    example = "storageSizeGB=2048 -> Skipped: over the 1 TB that Azure Backup's vaulted backups support"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        if not context.settings.skip_over_1tb or facts.storage_gb <= MAX_VAULTED_GB:
            return None
        return Skip(
            self.name,
            f"storage is {facts.storage_gb} GB; Azure Backup's vaulted backups support servers up to 1 TB "
            "(every backup job would fail); protect it by other means or reduce its storage",
        )


@register
class RegionVaultRule(Rule):
    """A vault must be in the server's region: a region override first, else the default vault if it fits."""

    name = "region-vault"
    example = "server in westeurope, vault in westeurope -> protect with that vault's policy"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        region = normalize_region(facts.location)
        override = context.settings.target_for(region)
        if override is not None:
            return Route(self.name, override, f"region override for {region}")
        default = context.settings.default_target
        if normalize_region(context.vault_location(default)) == region:
            return Route(self.name, default, "default vault")
        return Skip(self.name, f"no vault for region {region}")


@register
class TierPolicyRule(Rule):
    """A tier tag picks a policy (by name) in the vault chosen for the region; unknown tiers keep the default."""

    name = "tier-policy"
    example = "tag backup-tier=gold and AUTOPROTECT_TIER_POLICIES={'gold': 'pg-gold'} -> policy pg-gold"

    def evaluate(self, facts: ServerFacts, context: RuleContext, route: Route | None) -> Decision | None:
        if route is None:
            return None
        settings = context.settings
        tier = next((v for t, v in facts.tags.items() if t.lower() == settings.tier_tag.lower()), "")
        if not tier:
            return None
        policy_name = settings.tier_policies.get(tier.lower())
        if policy_name is None:
            return Route(route.rule, route.target, f"{route.reason}; tier {tier} has no policy, default kept", tier)
        vault = route.target.vault
        policy = VaultChildId(vault.subscription_id, vault.resource_group, vault.vault, policy_name)
        return Route(
            self.name, VaultTarget(vault, policy), f"{route.reason}; tier {tier} -> policy {policy_name}", tier
        )


def decide(facts: ServerFacts, context: RuleContext) -> Decision:
    """Run every rule in order: the first Skip wins; otherwise the last Route standing."""
    route: Route | None = None
    for rule in RULES:
        decision = rule.evaluate(facts, context, route)
        if isinstance(decision, Skip):
            return decision
        if isinstance(decision, Route):
            route = decision
    if route is None:  # pragma: no cover - the region-vault rule always decides
        raise AssertionError("no rule routed the server")
    return route
