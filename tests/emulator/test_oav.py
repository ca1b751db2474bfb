"""Every exchange Microsoft's SDK clients had with the emulator in this session, validated by Microsoft's `oav`.

Runs after the other emulator tests (tests/emulator/conftest.py orders it last) so that it sees their traffic:
the day-2 operations of tests/emulator/test_lifecycle.py and test_jobs.py, the happy path of test_sdk.py and
test_spec_validation.py. Skips with a reason when the specs or oav (npm, `make setup`) are absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.emulator import oav
from tests.emulator.helpers import read_jsonl
from tests.emulator.swagger import SpecSet

DP_DIR = "dataprotection/resource-manager/Microsoft.DataProtection/DataProtection/stable/2026-06-01"
PG_DIR = "postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2025-08-01"
# provider -> (spec files, operations this session must have exercised without an error, URLs no spec path has)
CASES = {
    "Microsoft.DataProtection": (
        [f"{DP_DIR}/dataprotection.json"],
        {
            "BackupInstances_AdhocBackup", "BackupInstances_SyncBackupInstance", "BackupInstances_ValidateForRestore",
            "BackupInstances_TriggerRestore", "BackupInstances_StopProtection", "BackupInstances_SuspendBackups",
            "BackupInstances_ResumeProtection", "BackupInstances_ResumeBackups", "RecoveryPoints_List",
            "RecoveryPoints_Get", "Jobs_List", "Jobs_Get", "DeletedBackupInstances_List",
            "DeletedBackupInstances_Get", "DeletedBackupInstances_Undelete", "BackupVaults_CreateOrUpdate",
        },
        # the resource-group-scoped result URLs of the examples' Location headers (docs/EMULATOR.md)
        re.compile(
            r"/resourceGroups/[^/]+/providers/Microsoft\.DataProtection/(backupInstances/[^/]+/)?operationResults/",
            re.I,
        ),
    ),
    "Microsoft.DBforPostgreSQL": (
        [f"{PG_DIR}/FlexibleServers.json", f"{PG_DIR}/ServerStartStopRestart.json"],
        {"Servers_Start", "Servers_Stop", "Servers_Restart", "Servers_Create", "Servers_Get"},
        # the location-scoped status/result URLs of the async headers (FlexibleServers.json has no path for them)
        re.compile(
            r"/providers/Microsoft\.DBforPostgreSQL/locations/[^/]+/(azureAsyncOperation|operationResults)/", re.I
        ),
    ),
}  # fmt: skip


@pytest.fixture
def oav_bin() -> Path:
    if not oav.OAV_BIN.exists():
        pytest.skip(f"oav is not installed at {oav.OAV_BIN} (run `make setup`, which runs npm ci)")
    return oav.OAV_BIN


@pytest.mark.after_traffic
@pytest.mark.parametrize("provider", sorted(CASES))
def test_oav_finds_no_error_in_the_sdk_traffic(
    provider: str, oav_bin: Path, specs_dir: Path, session_dir: Path, tmp_path: Path
) -> None:
    spec_files, expected, header_only = CASES[provider]
    entries = oav.sdk_exchanges(read_jsonl(session_dir / "traffic.jsonl"), provider)
    assert entries, f"no {provider} traffic from the SDK clients in this session"
    by_file: dict[str, list[dict[str, Any]]] = {f: [] for f in spec_files}
    sets = {f: SpecSet(specs_dir, [specs_dir / f]) for f in spec_files}
    for entry in entries:
        path = urlsplit(entry["request"]["url"]).path
        owner = next((f for f in spec_files if sets[f].match(entry["request"]["method"], path)), None)
        if owner is None:
            assert header_only.search(path), f"an SDK call outside the spec: {entry['request']['method']} {path}"
            continue
        by_file[owner].append(entry)
    passed: set[str] = set()
    for spec, exchanges in by_file.items():
        report = oav.validate(exchanges, specs_dir / spec, tmp_path)
        problems = [
            f"{e['operationId']} {e['errorCode']}: {e['errorMessage']} ({e['issueSource']})" for e in report.errors
        ]
        assert problems == [], "\n".join(problems)
        passed |= report.passed
    assert expected <= passed, f"not exercised: {sorted(expected - passed)}"
