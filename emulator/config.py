"""Knobs: built-in defaults, a named profile from `emulator/profiles/`, then `--config FILE`, then live PATCHes.

Durations are service seconds (what Azure takes); the clock's `clock_scale` turns them into real seconds. Token
lifetime is the one duration in real seconds (clients compare it with their own clock).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

DEFAULTS: dict[str, Any] = {
    "description": "built-in defaults (realistic latencies, no faults)",
    "clock_scale": 1.0,
    "seed": 1,
    "token_lifetime_s": 86400,
    "page_size": 100,
    "snapshot_interval_s": 5.0,
    "status_spelling": "mixed",
    "operation_retention_s": 86400,
    "latency_s": {
        "server_create": 300,
        "server_update": 30,
        "server_delete": 120,
        "server_stop": 120,
        "server_start": 180,
        "server_restart": 120,
        "validate": 30,
        "instance_create": 60,
        "protection_configure": 120,
        "instance_delete": 60,
        "instance_action": 30,
        "first_backup_after": 300,
        "backup_job_duration": 600,
        "restore_job_duration": 900,
        "request_ms": 0,
    },
    "retry_after_s": {"min": 10, "max": 60},
    "role_propagation_s": 300,
    "stopped_auto_start_s": 7 * 86400,
    "read_after_write_lag_s": 0,
    "throttle": {
        "enabled": True,
        "reads_burst": 250,
        "reads_per_s": 25,
        "writes_burst": 200,
        "writes_per_s": 10,
        "deletes_burst": 200,
        "deletes_per_s": 10,
    },
    "events": {
        "duplicate_probability": 0.0,
        "delay_s": 0,
        "concurrency": 8,
        "retry_schedule_s": [10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400],
        "max_attempts": 30,
        "timeout_s": 30,
        "recent_limit": 5000,
    },
    "faults": [],
    "caller_rbac": {"enabled": False},
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge `override` into a copy of `base`, recursing into dicts (lists and scalars are replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load(profile: str, config_file: Path | None = None) -> dict[str, Any]:
    """Defaults <- profile <- config file."""
    path = PROFILES_DIR / f"{profile}.json"
    if not path.exists():
        raise SystemExit(f"unknown profile {profile!r}; known: {', '.join(profile_names())}")
    cfg = deep_merge(DEFAULTS, json.loads(path.read_text()))
    cfg["profile"] = profile
    if config_file is not None:
        cfg = deep_merge(cfg, json.loads(config_file.read_text()))
    return cfg
