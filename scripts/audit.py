"""`make audit`: pip-audit over the deployed requirements, skipped with a clear line when it cannot look up.

pip-audit asks PyPI's vulnerability data for each pinned dependency. On machines that reach only a package
mirror, every lookup comes back "not found"; that is not a clean bill of health, so we say it was skipped
instead of printing a reassuring pass.
"""

from __future__ import annotations

import json
import subprocess
import sys

from scripts.stack import REPO_ROOT


def main() -> int:
    command = [sys.executable, "-m", "pip_audit", "-r", "requirements.txt", "-f", "json", "--progress-spinner", "off"]
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        print("pip-audit: SKIPPED (the vulnerability service did not answer within 300 s)")
        return 0
    try:
        report = json.loads(result.stdout)
    except ValueError:
        print(f"pip-audit: SKIPPED (no report; the advisory service is unreachable?)\n{result.stderr.strip()[-500:]}")
        return 0
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not audited:
        print(f"pip-audit: SKIPPED (the advisory service could look up none of the {len(dependencies)} dependencies)")
        return 0
    for dependency in vulnerable:
        ids = ", ".join(v.get("id", "?") for v in dependency["vulns"])
        print(f"pip-audit: {dependency['name']} {dependency.get('version', '')}: {ids}")
    print(
        f"pip-audit: {len(audited)} audited, {len(dependencies) - len(audited)} not found, {len(vulnerable)} vulnerable"
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
