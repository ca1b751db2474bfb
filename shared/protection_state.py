"""What a backup instance's `currentProtectionState` means for autoprotect: a pure mapping, one verdict each.

Why a table and not string checks in the flow: the spec has twelve states, and reading an unfamiliar one as
"still configuring" once made suspended and stopped protection time out as configuration failures. Every value
the spec names is here; anything else is `UNKNOWN`, which is waited on under the configure deadline and then
explained, never taken for protection.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    PROTECTED = "protected"  # backups run on the policy's schedule
    CONFIGURING = "configuring"  # the service is still working on it: look again
    FAILED = "failed"  # configuration failed or the service reports an error: a person must look
    SUSPENDED = "suspended"  # someone suspended the schedules: resumeBackups undoes it
    STOPPED = "stopped"  # someone stopped protection (data kept): resumeProtection undoes it
    DELETING = "deleting"  # someone deleted it: soft-deleted until purged, or undeleted by a person
    UNKNOWN = "unknown"


# The spec's CurrentProtectionState enum (Data Protection 2026-06-01), each with its verdict.
VERDICTS: dict[str, Verdict] = {
    "protectionconfigured": Verdict.PROTECTED,
    "configuringprotection": Verdict.CONFIGURING,
    "updatingprotection": Verdict.CONFIGURING,
    "configuringprotectionfailed": Verdict.FAILED,
    "protectionerror": Verdict.FAILED,
    "invalid": Verdict.FAILED,
    "notprotected": Verdict.FAILED,
    "backupschedulessuspended": Verdict.SUSPENDED,
    "retentionschedulessuspended": Verdict.SUSPENDED,
    "protectionstopped": Verdict.STOPPED,
    "softdeleting": Verdict.DELETING,
    "softdeleted": Verdict.DELETING,
}
# The POST that undoes each verdict (a PUT does not: the service keeps a stopped instance stopped).
RESUME_ACTION = {Verdict.SUSPENDED: "resumeBackups", Verdict.STOPPED: "resumeProtection"}


def verdict(current_protection_state: object) -> Verdict:
    """The verdict for a `currentProtectionState` value, case-insensitively; UNKNOWN for anything else."""
    if not isinstance(current_protection_state, str):
        return Verdict.UNKNOWN
    return VERDICTS.get(current_protection_state.lower(), Verdict.UNKNOWN)
