"""checkov (an IaC security scanner that reads Bicep) reports no failed check on infra/, and parses every file.

checkov lives in its own virtualenv, .venv/iac (tests/infra/requirements-iac.txt: its pins conflict with pytest's),
which `make setup` creates. A missing checkov fails this test: it is part of the test suite, not optional.
Set CHECKOV=/path/to/checkov to use another installation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from . import bicep

REPO = bicep.REPO


def checkov_executable() -> Path:
    candidates = [os.environ.get("CHECKOV"), str(REPO / ".venv" / "iac" / "bin" / "checkov"), shutil.which("checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(
        "checkov is not installed: `make setup` installs it into .venv/iac "
        "(python3.11 -m venv .venv/iac && .venv/iac/bin/pip install -r tests/infra/requirements-iac.txt)"
    )


@cache
def scan() -> dict[str, Any]:
    """One checkov run over infra/ (Bicep only), offline: no Prisma Cloud download, no mapping, no upload."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    command = [str(checkov_executable()), "-d", str(bicep.INFRA), "--framework", "bicep", "-o", "json"]
    command += ["--compact", "--skip-download"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False, cwd=REPO)
    assert done.returncode in (0, 1), f"checkov failed to run ({done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    (bicep_report,) = [r for r in reports if r.get("check_type") == "bicep"]
    result: dict[str, Any] = bicep_report
    return result


def test_no_failed_checks() -> None:
    report = scan()
    failed = [
        f"{c['check_id']} {c['check_name']} at {c['file_path']}:{c['resource']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["failed"] == 0


def test_every_file_parses_with_checkovs_parser() -> None:
    summary = scan()["summary"]
    assert summary["parsing_errors"] == 0, "checkov could not parse a file (its pycep-parser is older than Bicep)"
    assert summary["resource_count"] > 0 and summary["passed"] > 0


def test_every_skip_is_justified_inline() -> None:
    for check in scan()["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert reason and reason != "No comment provided", f"{check['check_id']} skipped without a reason"
