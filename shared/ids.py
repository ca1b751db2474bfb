"""Strict parsing of the ARM resource IDs autoprotect acts on.

Every ARM URL the app builds starts from one of these parsed IDs, so the validator is deliberately narrow: a
GUID subscription, ASCII names within ARM's documented limits, the exact provider and type, no child segments,
no traversal, no percent-encoding, no unicode look-alikes. ARM returns IDs with mixed casing
(`resourcegroups`, `Microsoft.DBForPostgreSQL`), so comparison uses a lower-cased key while the original
casing of the names is kept for display.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SERVER_PROVIDER = "Microsoft.DBforPostgreSQL"
SERVER_TYPE = "flexibleServers"
SERVER_RESOURCE_TYPE = f"{SERVER_PROVIDER}/{SERVER_TYPE}"
VAULT_PROVIDER = "Microsoft.DataProtection"

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Resource group: 1-90 of alphanumerics, underscore, parentheses, hyphen, period; not ending in a period.
# ARM also allows some unicode letters; we refuse them so look-alike IDs can never reach a URL.
_RESOURCE_GROUP = re.compile(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]")
# Flexible server: 3-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen.
_SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# Backup vault / policy names: 2-50 alphanumerics and hyphens, starting with a letter.
_VAULT_CHILD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,49}")
_MAX_ID_LENGTH = 512


class InvalidResourceId(ValueError):
    """A resource ID failed validation; the message says why (and never echoes more than a bounded prefix)."""


def _shorten(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


def _segments(resource_id: object, expected: int) -> list[str]:
    if not isinstance(resource_id, str):
        raise InvalidResourceId(f"resource ID must be a string, not {type(resource_id).__name__}")
    if len(resource_id) > _MAX_ID_LENGTH:
        raise InvalidResourceId(f"resource ID longer than {_MAX_ID_LENGTH} characters")
    if not resource_id.isascii() or not resource_id.isprintable():
        raise InvalidResourceId(f"resource ID has non-ASCII or control characters: {_shorten(resource_id)!r}")
    for forbidden in ("%", "\\", "?", "#", "..", "//", " "):
        if forbidden in resource_id:
            raise InvalidResourceId(f"resource ID contains {forbidden!r}: {_shorten(resource_id)!r}")
    if not resource_id.startswith("/"):
        raise InvalidResourceId(f"resource ID must start with '/': {_shorten(resource_id)!r}")
    parts = resource_id.rstrip("/").split("/")[1:]
    if len(parts) != expected:
        raise InvalidResourceId(f"expected {expected} path segments, got {len(parts)}: {_shorten(resource_id)!r}")
    return parts


def _expect(actual: str, expected: str, resource_id: str) -> None:
    if actual.lower() != expected.lower():
        raise InvalidResourceId(f"expected {expected!r} but found {actual!r} in {_shorten(resource_id)!r}")


def _check_subscription(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise InvalidResourceId(f"subscription must be a GUID, got {_shorten(value, 60)!r}")
    return value.lower()


def _check_resource_group(value: str) -> str:
    if not _RESOURCE_GROUP.fullmatch(value):
        raise InvalidResourceId(f"invalid resource group name {_shorten(value, 100)!r}")
    return value


@dataclass(frozen=True)
class ServerId:
    """A validated Azure Database for PostgreSQL flexible server ID."""

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: object) -> ServerId:
        """Parse `/subscriptions/{guid}/resourceGroups/{rg}/providers/{SERVER_RESOURCE_TYPE}/{name}`.

        Child resources (databases, firewall rules...) and anything else raise InvalidResourceId.
        """
        parts = _segments(resource_id, 8)
        assert isinstance(resource_id, str)
        _expect(parts[0], "subscriptions", resource_id)
        _expect(parts[2], "resourceGroups", resource_id)
        _expect(parts[4], "providers", resource_id)
        _expect(parts[5], SERVER_PROVIDER, resource_id)
        _expect(parts[6], SERVER_TYPE, resource_id)
        name = parts[7].lower()
        if not _SERVER_NAME.fullmatch(name):
            raise InvalidResourceId(f"invalid flexible server name {_shorten(parts[7], 80)!r}")
        return cls(_check_subscription(parts[1]), _check_resource_group(parts[3]), name)

    @property
    def id(self) -> str:
        """The ID in ARM's canonical casing, for URLs and display."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{SERVER_RESOURCE_TYPE}/{self.name}"
        )

    @property
    def key(self) -> str:
        """Lower-cased ID: two IDs name the same server exactly when their keys are equal."""
        return self.id.lower()

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    @property
    def row_key(self) -> str:
        """Table Storage row key: readable, unique per server within its subscription, no forbidden chars."""
        return f"{self.resource_group.lower()}|{self.name}"

    def backup_instance_name(self) -> str:
        """A deterministic backup instance name, so a retried or duplicated job can never create a second one.

        The hash of the full lower-cased ID keeps servers of the same name in different resource groups or
        subscriptions apart inside one vault.
        """
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:12]
        return f"{self.name}-{digest}"

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class VaultChildId:
    """A validated backup vault ID, or a backup policy ID inside a vault (when `policy` is set)."""

    subscription_id: str
    resource_group: str
    vault: str
    policy: str | None = None

    @classmethod
    def parse_vault(cls, resource_id: object) -> VaultChildId:
        parts = _segments(resource_id, 8)
        assert isinstance(resource_id, str)
        cls._check_common(parts, resource_id)
        return cls(_check_subscription(parts[1]), _check_resource_group(parts[3]), parts[7])

    @classmethod
    def parse_policy(cls, resource_id: object) -> VaultChildId:
        parts = _segments(resource_id, 10)
        assert isinstance(resource_id, str)
        cls._check_common(parts, resource_id)
        _expect(parts[8], "backupPolicies", resource_id)
        if not _VAULT_CHILD_NAME.fullmatch(parts[9]):
            raise InvalidResourceId(f"invalid backup policy name {_shorten(parts[9], 60)!r}")
        return cls(_check_subscription(parts[1]), _check_resource_group(parts[3]), parts[7], parts[9])

    @staticmethod
    def _check_common(parts: list[str], resource_id: str) -> None:
        _expect(parts[0], "subscriptions", resource_id)
        _expect(parts[2], "resourceGroups", resource_id)
        _expect(parts[4], "providers", resource_id)
        _expect(parts[5], VAULT_PROVIDER, resource_id)
        _expect(parts[6], "backupVaults", resource_id)
        if not _VAULT_CHILD_NAME.fullmatch(parts[7]):
            raise InvalidResourceId(f"invalid backup vault name {_shorten(parts[7], 60)!r}")

    @property
    def vault_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{VAULT_PROVIDER}/backupVaults/{self.vault}"
        )

    @property
    def id(self) -> str:
        return self.vault_id if self.policy is None else f"{self.vault_id}/backupPolicies/{self.policy}"

    @property
    def key(self) -> str:
        return self.id.lower()

    def __str__(self) -> str:
        return self.id


def vault_of(resource_id: str) -> str | None:
    """The vault ID inside a backup instance ID (`.../backupVaults/{v}/backupInstances/{i}`), if any."""
    lowered = resource_id.lower()
    marker = "/providers/microsoft.dataprotection/backupvaults/"
    at = lowered.find(marker)
    if at < 0:
        return None
    end = lowered.find("/", at + len(marker))
    return resource_id[: end if end >= 0 else len(resource_id)]
