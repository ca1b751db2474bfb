"""App settings and host.json, loaded the way the Functions host loads them.

The host turns app settings into environment variables before the worker imports the app, and
`local.settings.json` `Values` only fill what the environment does not already define. Binding properties
such as queue names and schedules may say `%Name%`, which the host resolves from those settings at startup;
an unknown name stops the host, so it stops the dev host too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PERCENT = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


class ConfigError(Exception):
    """A setting, host.json or the app itself is unusable; the message says what to fix."""


def load_local_settings(path: Path) -> dict[str, str]:
    """Read `Values` from local.settings.json; a missing file means no values, as with Core Tools."""
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    if document.get("IsEncrypted"):
        raise ConfigError(f"{path} is encrypted; the dev host reads only plain settings")
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'Values' must be an object")
    return {str(key): "" if value is None else str(value) for key, value in values.items()}


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy settings into the environment without overriding it (environment wins); return what was set."""
    target = os.environ if environ is None else environ
    applied = []
    for key, value in values.items():
        if key not in target:
            target[key] = value
            applied.append(key)
    return applied


def resolve(value: str, settings: Mapping[str, str], *, where: str) -> str:
    """Replace each `%Name%` in a binding property by the setting's value, as the host's resolver does."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise ConfigError(f"{where}: setting '{name}' (from '%{name}%') is not defined")
        return settings[name]

    return _PERCENT.sub(lookup, value)


def parse_timespan(value: Any, *, where: str) -> float:
    """Seconds from a .NET TimeSpan string ('[d.]hh:mm:ss[.fff]'); bare numbers are milliseconds (v1)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not a TimeSpan")
    if isinstance(value, int | float):
        return float(value) / 1000.0
    if isinstance(value, str):
        match = _TIMESPAN.match(value.strip())
        if match:
            days = int(match.group("days") or 0)
            return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))
    raise ConfigError(f"{where}: {value!r} is not a TimeSpan like '00:00:30'")


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` in host.json, with the host's documented defaults."""

    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    batch_size: int = 16
    max_dequeue_count: int = 5
    new_batch_threshold: int = 8
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the dev host honours."""

    queues: QueueOptions = QueueOptions()
    function_timeout: float | None = 300.0


def _int_option(section: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(f"host.json extensions.queues.{key} must be an integer in [{minimum}, {maximum}]")
    return value


def load_host_config(path: Path) -> HostConfig:
    """Read host.json; a missing file gives the defaults, as in a fresh Functions project."""
    if not path.is_file():
        return HostConfig()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return host_config_from_dict(document)


def host_config_from_dict(document: Mapping[str, Any]) -> HostConfig:
    section = document.get("extensions", {}).get("queues", {})
    batch_size = _int_option(section, "batchSize", 16, minimum=1, maximum=32)
    encoding = str(section.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ConfigError("host.json extensions.queues.messageEncoding must be 'base64' or 'none'")
    polling = section.get("maxPollingInterval")
    visibility = section.get("visibilityTimeout")
    queues = QueueOptions(
        max_polling_interval=60.0 if polling is None else parse_timespan(polling, where="maxPollingInterval"),
        visibility_timeout=0.0 if visibility is None else parse_timespan(visibility, where="visibilityTimeout"),
        batch_size=batch_size,
        max_dequeue_count=_int_option(section, "maxDequeueCount", 5, minimum=1, maximum=10_000),
        new_batch_threshold=_int_option(section, "newBatchThreshold", batch_size // 2, minimum=0, maximum=10_000),
        message_encoding=encoding,
    )
    raw_timeout = document.get("functionTimeout")
    if raw_timeout is None:
        timeout: float | None = 300.0
    elif raw_timeout == "-1":
        timeout = None
    else:
        timeout = parse_timespan(raw_timeout, where="functionTimeout")
    return HostConfig(queues=queues, function_timeout=timeout)
