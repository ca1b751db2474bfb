"""Every setting autoprotect reads, validated once into a typed object.

The table `SETTINGS` is the single source of truth: `Settings.from_env` reads it, the README's configuration
table and `local.settings.sample.json` are checked against it by tests, and a missing or malformed value fails
with one message that names each bad setting and what it expects.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.ids import InvalidResourceId, VaultChildId

_POLICY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,49}")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ConfigError(ValueError):
    """One or more settings are missing or malformed; the message lists each with what is expected."""


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None  # None: required
    meaning: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "AUTOPROTECT_DEFAULT_VAULT_ID",
        None,
        "ARM ID of the backup vault used when no region override matches",
    ),
    SettingSpec(
        "AUTOPROTECT_DEFAULT_POLICY_ID",
        None,
        "ARM ID of a PostgreSQL flexible server policy in the default vault",
    ),
    SettingSpec(
        "AUTOPROTECT_REGION_VAULTS",
        "{}",
        'JSON map region -> {"vault": id, "policy": id}; the vault must be in that region',
    ),
    SettingSpec(
        "AUTOPROTECT_SUBSCRIPTIONS",
        "",
        "Comma-separated subscription IDs the app may act on; required unless AUTOPROTECT_ANY_SUBSCRIPTION=true",
    ),
    SettingSpec(
        "AUTOPROTECT_ANY_SUBSCRIPTION",
        "false",
        "true: with no allow-list, act on any subscription the identity can read (open scope; off by default)",
    ),
    SettingSpec("AUTOPROTECT_OPTOUT_TAG", "autoprotect", "Tag name that excludes a server (case-insensitive)"),
    SettingSpec("AUTOPROTECT_OPTOUT_VALUE", "off", "Tag value that excludes a server (case-insensitive)"),
    SettingSpec("AUTOPROTECT_MODE", "opt-out", "opt-out: protect all but excluded servers; opt-in: only tagged ones"),
    SettingSpec("AUTOPROTECT_OPTIN_TAG", "autoprotect", "In opt-in mode, the tag a server needs to be protected"),
    SettingSpec("AUTOPROTECT_OPTIN_VALUE", "on", "In opt-in mode, the value of that tag (case-insensitive)"),
    SettingSpec(
        "AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS",
        "",
        "Comma-separated resource group name patterns (fnmatch, case-insensitive) never protected",
    ),
    SettingSpec("AUTOPROTECT_TIER_TAG", "backup-tier", "Tag whose value picks a policy from AUTOPROTECT_TIER_POLICIES"),
    SettingSpec(
        "AUTOPROTECT_TIER_POLICIES",
        "{}",
        'JSON map tier value -> policy name in the chosen vault, e.g. {"gold": "pg-gold"}',
    ),
    SettingSpec("AUTOPROTECT_DRY_RUN", "false", "true: record what would be done without writing to ARM"),
    SettingSpec("AUTOPROTECT_JOBS_QUEUE", "autoprotect-jobs", "Storage queue of protection jobs"),
    SettingSpec("AUTOPROTECT_LEDGER_TABLE", "autoprotect", "Storage table holding one record per server"),
    SettingSpec("AUTOPROTECT_POLL_SCHEDULE", "*/30 * * * * *", "NCRONTAB schedule of the operation poller"),
    SettingSpec("AUTOPROTECT_SWEEP_SCHEDULE", "0 0 * * * *", "NCRONTAB schedule of the reconcile sweep (hourly)"),
    SettingSpec(
        "AUTOPROTECT_AUTO_GRANT",
        "false",
        "true: give each vault's identity the two roles it needs on a server before validating",
    ),
    SettingSpec(
        "AUTOPROTECT_NOTIFY_WEBHOOK_URL",
        "",
        "https webhook told once per incident (NeedsAttention, broken protection); empty: no notifications",
    ),
    SettingSpec("AUTOPROTECT_NOTIFY_FORMAT", "json", "Notification payload: json, teams or slack"),
    SettingSpec("AUTOPROTECT_ARM_ENDPOINT", "https://management.azure.com", "ARM origin (sovereign clouds differ)"),
    SettingSpec("AUTOPROTECT_ARM_SCOPE", "", "Token scope for ARM; empty means '{ARM endpoint}/.default'"),
    SettingSpec("AUTOPROTECT_MANAGED_IDENTITY_CLIENT_ID", "", "Client ID of a user-assigned identity; empty: default"),
    SettingSpec("AUTOPROTECT_DATAPROTECTION_API_VERSION", "2026-06-01", "api-version for Microsoft.DataProtection"),
    SettingSpec("AUTOPROTECT_POSTGRES_API_VERSION", "2025-08-01", "api-version for Microsoft.DBforPostgreSQL"),
    SettingSpec(
        "AUTOPROTECT_PERMISSION_WAIT_MINUTES",
        "45",
        "How long to keep re-validating while the vault's role assignments propagate",
    ),
    SettingSpec(
        "AUTOPROTECT_NOT_READY_WAIT_MINUTES",
        "120",
        "How long to wait for a server to become Ready before giving up",
    ),
    SettingSpec(
        "AUTOPROTECT_NOT_FOUND_WAIT_MINUTES",
        "10",
        "How long a server that answers 404 is re-read before it is taken as gone (ARM can lag a create)",
    ),
    SettingSpec(
        "AUTOPROTECT_CONFIGURE_TIMEOUT_MINUTES",
        "60",
        "How long a backup instance may stay ConfiguringProtection before it needs attention",
    ),
    SettingSpec(
        "AUTOPROTECT_OPERATION_TIMEOUT_MINUTES",
        "120",
        "How long an ARM operation (validate, create) may stay running before it needs attention; "
        "an unknown status ends there too",
    ),
    SettingSpec(
        "AUTOPROTECT_RESUME_PROTECTION",
        "true",
        "true: resume a backup instance that someone stopped or suspended (unless the server is opted out); "
        "false: only report it",
    ),
    SettingSpec(
        "AUTOPROTECT_SKIP_OVER_1TB",
        "true",
        "true: skip servers whose storage is over 1 TB (Azure Backup's vaulted backups support up to 1 TB; "
        "every job fails above)",
    ),
    SettingSpec(
        "AUTOPROTECT_RETRY_SECONDS",
        "60",
        "Base delay before re-checking a server that is not ready or throttled",
    ),
    SettingSpec("AUTOPROTECT_WATCHDOG_MINUTES", "10", "A queued job not picked up within this time is enqueued again"),
    SettingSpec("AUTOPROTECT_POLL_CONCURRENCY", "16", "Parallel status GETs per poller run"),
    SettingSpec("AUTOPROTECT_POLL_BATCH", "2000", "Most outstanding operations one poller run handles"),
)
SETTING_NAMES = frozenset(spec.name for spec in SETTINGS)


@dataclass(frozen=True)
class VaultTarget:
    """Where a server's backups go: a vault and one of its policies."""

    vault: VaultChildId
    policy: VaultChildId


@dataclass(frozen=True)
class Settings:
    default_target: VaultTarget
    region_targets: Mapping[str, VaultTarget]
    subscriptions: frozenset[str]
    any_subscription: bool
    optout_tag: str
    optout_value: str
    mode: str
    optin_tag: str
    optin_value: str
    excluded_resource_groups: tuple[str, ...]
    tier_tag: str
    tier_policies: Mapping[str, str]
    dry_run: bool
    sweep_schedule: str
    auto_grant: bool
    notify_webhook_url: str = field(repr=False)  # a bearer secret (Slack and Teams keep the credential in the path)
    notify_format: str
    jobs_queue: str
    ledger_table: str
    poll_schedule: str
    arm_endpoint: str
    arm_scope: str
    managed_identity_client_id: str
    dataprotection_api_version: str
    postgres_api_version: str
    permission_wait_s: float
    not_ready_wait_s: float
    not_found_wait_s: float
    configure_timeout_s: float
    operation_timeout_s: float
    resume_protection: bool
    skip_over_1tb: bool
    retry_s: float
    watchdog_s: float
    poll_concurrency: int
    poll_batch: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        default_target = reader.target("AUTOPROTECT_DEFAULT_VAULT_ID", "AUTOPROTECT_DEFAULT_POLICY_ID")
        settings = cls(
            default_target=default_target,  # type: ignore[arg-type]
            region_targets=reader.region_targets("AUTOPROTECT_REGION_VAULTS"),
            subscriptions=reader.guids("AUTOPROTECT_SUBSCRIPTIONS"),
            any_subscription=reader.choice("AUTOPROTECT_ANY_SUBSCRIPTION", ("true", "false")) == "true",
            optout_tag=reader.text("AUTOPROTECT_OPTOUT_TAG", max_length=512),
            optout_value=reader.text("AUTOPROTECT_OPTOUT_VALUE", max_length=256, allow_empty=True),
            mode=reader.choice("AUTOPROTECT_MODE", ("opt-out", "opt-in")),
            optin_tag=reader.text("AUTOPROTECT_OPTIN_TAG", max_length=512),
            optin_value=reader.text("AUTOPROTECT_OPTIN_VALUE", max_length=256, allow_empty=True),
            excluded_resource_groups=reader.patterns("AUTOPROTECT_EXCLUDED_RESOURCE_GROUPS"),
            tier_tag=reader.text("AUTOPROTECT_TIER_TAG", max_length=512),
            tier_policies=reader.tier_policies("AUTOPROTECT_TIER_POLICIES"),
            dry_run=reader.choice("AUTOPROTECT_DRY_RUN", ("true", "false")) == "true",
            sweep_schedule=reader.text("AUTOPROTECT_SWEEP_SCHEDULE", max_length=100),
            auto_grant=reader.choice("AUTOPROTECT_AUTO_GRANT", ("true", "false")) == "true",
            notify_webhook_url=reader.webhook("AUTOPROTECT_NOTIFY_WEBHOOK_URL"),
            notify_format=reader.choice("AUTOPROTECT_NOTIFY_FORMAT", ("json", "teams", "slack")),
            jobs_queue=reader.name("AUTOPROTECT_JOBS_QUEUE", _queue_name_ok, "3-63 lower-case letters/digits/-"),
            ledger_table=reader.name("AUTOPROTECT_LEDGER_TABLE", _table_name_ok, "3-63 letters/digits, letter first"),
            poll_schedule=reader.text("AUTOPROTECT_POLL_SCHEDULE", max_length=100),
            arm_endpoint=reader.https_origin("AUTOPROTECT_ARM_ENDPOINT"),
            arm_scope=reader.text("AUTOPROTECT_ARM_SCOPE", max_length=300, allow_empty=True),
            managed_identity_client_id=reader.text(
                "AUTOPROTECT_MANAGED_IDENTITY_CLIENT_ID", max_length=64, allow_empty=True
            ),
            dataprotection_api_version=reader.api_version("AUTOPROTECT_DATAPROTECTION_API_VERSION"),
            postgres_api_version=reader.api_version("AUTOPROTECT_POSTGRES_API_VERSION"),
            permission_wait_s=reader.number("AUTOPROTECT_PERMISSION_WAIT_MINUTES", 0, 24 * 60) * 60,
            not_ready_wait_s=reader.number("AUTOPROTECT_NOT_READY_WAIT_MINUTES", 0, 7 * 24 * 60) * 60,
            not_found_wait_s=reader.number("AUTOPROTECT_NOT_FOUND_WAIT_MINUTES", 0, 24 * 60) * 60,
            configure_timeout_s=reader.number("AUTOPROTECT_CONFIGURE_TIMEOUT_MINUTES", 1, 24 * 60) * 60,
            operation_timeout_s=reader.number("AUTOPROTECT_OPERATION_TIMEOUT_MINUTES", 1, 7 * 24 * 60) * 60,
            resume_protection=reader.choice("AUTOPROTECT_RESUME_PROTECTION", ("true", "false")) == "true",
            skip_over_1tb=reader.choice("AUTOPROTECT_SKIP_OVER_1TB", ("true", "false")) == "true",
            retry_s=reader.number("AUTOPROTECT_RETRY_SECONDS", 0.1, 3600),
            watchdog_s=reader.number("AUTOPROTECT_WATCHDOG_MINUTES", 0.05, 24 * 60) * 60,
            poll_concurrency=int(reader.number("AUTOPROTECT_POLL_CONCURRENCY", 1, 256)),
            poll_batch=int(reader.number("AUTOPROTECT_POLL_BATCH", 1, 100_000)),
        )
        if not settings.subscriptions and not settings.any_subscription:
            # Closed by default: an empty list once meant "anywhere", which let a forged job reach any subscription.
            reader.errors.append(
                "AUTOPROTECT_SUBSCRIPTIONS is empty: list the subscription IDs autoprotect may act on, or set "
                "AUTOPROTECT_ANY_SUBSCRIPTION=true to let it act on any subscription its identity can read"
            )
        reader.raise_if_errors()
        return settings

    def target_for(self, region: str) -> VaultTarget | None:
        """The vault for a server's region: an override for that region, else the default (checked later)."""
        return self.region_targets.get(normalize_region(region))

    def scope_error(self, subscription_id: str) -> str | None:
        """Why a subscription is out of bounds for this app, or None when it may act there (closed by default)."""
        if self.any_subscription or subscription_id.lower() in self.subscriptions:
            return None
        return f"subscription {subscription_id} is not in AUTOPROTECT_SUBSCRIPTIONS"

    def targets(self) -> list[VaultTarget]:
        """Every configured vault and policy, the default first."""
        return [self.default_target, *self.region_targets.values()]

    def subscriptions_in_scope(self) -> list[str]:
        """The allow-list: where the sweep looks. Empty only with AUTOPROTECT_ANY_SUBSCRIPTION=true, when the
        sweep asks ARM which subscriptions the identity can read (the Bicep always writes the list)."""
        return sorted(self.subscriptions)

    @property
    def scope(self) -> str:
        return self.arm_scope or f"{self.arm_endpoint}/.default"


def normalize_region(region: str) -> str:
    """ARM regions arrive as 'West Europe' or 'westeurope'; compare them one way."""
    return region.replace(" ", "").lower()


def _queue_name_ok(value: str) -> bool:
    return 3 <= len(value) <= 63 and value.replace("-", "").isalnum() and value.islower() and "--" not in value


def _table_name_ok(value: str) -> bool:
    return 3 <= len(value) <= 63 and value.isalnum() and value[0].isalpha() and value.isascii()


class _Reader:
    """Collects every problem instead of stopping at the first, so one deploy fixes them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._defaults = {spec.name: spec.default for spec in SETTINGS}
        self.errors: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or value.strip() == "":
            default = self._defaults[name]
            if default is None:
                self.errors.append(f"{name} is required ({_meaning(name)})")
            return default
        return value.strip()

    def text(self, name: str, *, max_length: int, allow_empty: bool = False) -> str:
        value = self.raw(name) or ""
        if not value and not allow_empty and self._defaults[name] is not None:
            self.errors.append(f"{name} must not be empty")
        if len(value) > max_length:
            self.errors.append(f"{name} is longer than {max_length} characters")
        return value

    def name(self, name: str, check: Callable[[str], bool], expected: str) -> str:
        value = self.raw(name) or ""
        if not check(value):
            self.errors.append(f"{name}={value!r} is not a valid name ({expected})")
        return value

    def https_origin(self, name: str) -> str:
        value = (self.raw(name) or "").rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
            self.errors.append(f"{name}={value!r} must be an https origin such as https://management.azure.com")
        return value

    def api_version(self, name: str) -> str:
        value = self.raw(name) or ""
        head = value.removesuffix("-preview")
        if len(head) != 10 or not head.replace("-", "").isdigit():
            self.errors.append(f"{name}={value!r} must look like 2026-06-01")
        return value

    def webhook(self, name: str) -> str:
        from shared.notify import check_webhook_url

        value = self.raw(name) or ""
        problem = check_webhook_url(value) if value else None
        if problem:
            self.errors.append(f"{name}: {problem}")  # the URL itself is a secret: never echoed
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = (self.raw(name) or "").lower()
        if value not in allowed:
            self.errors.append(f"{name}={value!r} must be one of {', '.join(allowed)}")
        return value

    def patterns(self, name: str) -> tuple[str, ...]:
        raw = self.raw(name) or ""
        values = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
        bad = [v for v in values if len(v) > 90 or not all(c.isalnum() or c in "-_.()*?[]!" for c in v)]
        if bad:
            self.errors.append(
                f"{name}: {bad[0]!r} is not a resource group name pattern (letters, digits, -_.() and * ? [ ])"
            )
        return values

    def tier_policies(self, name: str) -> dict[str, str]:
        raw = self.raw(name) or "{}"
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            self.errors.append(f"{name} is not valid JSON: {exc}")
            return {}
        if not isinstance(parsed, dict):
            self.errors.append(f'{name} must be a JSON object like {{"gold": "pg-gold"}}')
            return {}
        policies: dict[str, str] = {}
        for tier, policy in parsed.items():
            if not isinstance(policy, str) or not _POLICY_NAME.fullmatch(policy):
                self.errors.append(
                    f"{name}[{tier!r}]: {policy!r} is not a backup policy name (2-50 letters, digits, -)"
                )
                continue
            policies[str(tier).lower()] = policy
        return policies

    def guids(self, name: str) -> frozenset[str]:
        raw = self.raw(name) or ""
        values = [part.strip().lower() for part in raw.split(",") if part.strip()]
        bad = [value for value in values if not _GUID.fullmatch(value)]
        if bad:
            self.errors.append(f"{name} must be comma-separated subscription GUIDs; not GUIDs: {', '.join(bad[:3])}")
        return frozenset(values)

    def number(self, name: str, low: float, high: float) -> float:
        value = self.raw(name) or "0"
        try:
            number = float(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} must be a number between {low:g} and {high:g}")
            return low
        if not low <= number <= high:
            self.errors.append(f"{name}={value!r} must be between {low:g} and {high:g}")
        return number

    def target(self, vault_setting: str, policy_setting: str) -> VaultTarget | None:
        vault_raw, policy_raw = self.raw(vault_setting), self.raw(policy_setting)
        if vault_raw is None or policy_raw is None:
            return None
        return self._target(vault_raw, policy_raw, f"{vault_setting}/{policy_setting}")

    def _target(self, vault_raw: object, policy_raw: object, where: str) -> VaultTarget | None:
        try:
            vault = VaultChildId.parse_vault(vault_raw)
            policy = VaultChildId.parse_policy(policy_raw)
        except InvalidResourceId as exc:
            self.errors.append(f"{where}: {exc}")
            return None
        if policy.vault_id.lower() != vault.key:
            self.errors.append(f"{where}: policy {policy} is not in vault {vault}")
            return None
        return VaultTarget(vault, policy)

    def region_targets(self, name: str) -> dict[str, VaultTarget]:
        raw = self.raw(name) or "{}"
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            self.errors.append(f"{name} is not valid JSON: {exc}")
            return {}
        if not isinstance(parsed, dict):
            self.errors.append(f'{name} must be a JSON object like {{"westeurope": {{"vault": ..., "policy": ...}}}}')
            return {}
        targets: dict[str, VaultTarget] = {}
        for region, entry in parsed.items():
            if not isinstance(entry, dict) or set(entry) != {"vault", "policy"}:
                self.errors.append(f"{name}[{region!r}] must be an object with exactly 'vault' and 'policy'")
                continue
            target = self._target(entry["vault"], entry["policy"], f"{name}[{region!r}]")
            if target is not None:
                targets[normalize_region(str(region))] = target
        return targets

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(self.errors))


def _meaning(name: str) -> str:
    return next(spec.meaning for spec in SETTINGS if spec.name == name)
