"""Microsoft's `oav validate-traffic` over the emulator's traffic log.

Why both this and `swagger.py`: `swagger.py` checks one exchange at a time inside a test, with readable messages;
oav is the validator Microsoft runs on live traffic, with its own rules (read-only properties in requests,
content types, formats, discriminators), so the emulator's fidelity is judged by Microsoft's tool, not only ours.
Only exchanges made by Microsoft's SDK clients are given to oav: tests that send malformed requests on purpose
(with `requests`) would otherwise count as emulator errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scripts.stack import REPO_ROOT

OAV_BIN = REPO_ROOT / "node_modules" / ".bin" / "oav"
SDK_AGENT = "azsdk-python-"


@dataclass
class OavReport:
    """What oav said: the operations that passed, and every error with its operation and payload file."""

    passed: set[str]
    errors: list[dict[str, Any]]
    exchanges: int


def provider_of(path: str) -> str:
    """The namespace that serves a path: the last `/providers/<ns>` (a role assignment on a server is
    Microsoft.Authorization's)."""
    parts = path.split("/")
    spots = [i for i, part in enumerate(parts[:-1]) if part.lower() == "providers"]
    return parts[spots[-1] + 1].lower() if spots else ""


def sdk_exchanges(entries: list[dict[str, Any]], provider: str) -> list[dict[str, Any]]:
    """ARM exchanges of Microsoft's SDK clients with one resource provider."""
    return [
        e
        for e in entries
        if str(e["request"]["headers"].get("User-Agent", "")).startswith(SDK_AGENT)
        and provider_of(urlsplit(e["request"]["url"]).path) == provider.lower()
    ]


def _payload(entry: dict[str, Any]) -> dict[str, Any]:
    """oav's live-validation format; the host is ARM's, as the spec's `host` says."""
    url = urlsplit(entry["request"]["url"])
    query = f"?{url.query}" if url.query else ""
    response = entry["response"]
    return {
        "liveRequest": {
            "method": entry["request"]["method"],
            "url": f"https://management.azure.com{url.path}{query}",
            "headers": entry["request"]["headers"],
            "body": entry["request"]["body"],
        },
        "liveResponse": {
            "statusCode": str(response["status"]),
            "headers": response["headers"],
            "body": response["body"],
        },
    }


def validate(entries: list[dict[str, Any]], spec: Path, workdir: Path) -> OavReport:
    """Run `oav validate-traffic` on `entries` against one spec file; raises when oav itself fails to run."""
    traffic = workdir / "traffic"
    shutil.rmtree(traffic, ignore_errors=True)
    traffic.mkdir(parents=True)
    for n, entry in enumerate(entries):
        (traffic / f"{n:05d}.json").write_text(json.dumps(_payload(entry)))
    report_path = workdir / "oav-report.json"
    report_path.unlink(missing_ok=True)
    command = [str(OAV_BIN), "validate-traffic", str(traffic), str(spec), "--report", "", "--jsonReport"]
    run = subprocess.run(
        [*command, str(report_path), "-l", "off"], capture_output=True, text=True, timeout=300, check=False
    )
    if not report_path.exists():
        raise RuntimeError(f"oav wrote no report (exit {run.returncode}): {run.stderr[-2000:]}")
    report = json.loads(report_path.read_text())
    passed = {op for item in report["passedOperationsList"] for op in item["operationIds"]}
    return OavReport(passed=passed, errors=list(report["errors"]), exchanges=len(entries))
