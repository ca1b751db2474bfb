"""Coverage report over the ledger: how much of the estate is protected, what is not and why, and how fast.

The report is computed from ledger records only (plus, optionally, the times of first successful backup jobs,
which the ledger does not hold yet), by pure functions, so that the CLI, a timer or a test can build the same
numbers from the same records. Nothing here reads storage or ARM; `now` is passed in so that ages are
reproducible.

Definitions, shared by every format:

- *eligible*: every server whose state is neither `Skipped` nor `Gone`; these are the servers autoprotect is
  expected to protect.
- *covered*: `Protected` (by autoprotect) plus `ProtectedElsewhere` (another team's vault already protects it);
  both are reported separately as well. *unprotected* = eligible - covered (in flight, waiting, or failed).
- *coverage percent*: covered / eligible x 100, or null when nothing is eligible (never a made-up 100 %).
- *region*: the record's location, lower-cased with spaces removed (`West Europe` -> `westeurope`);
  *tier*: the record's `tier` if the ledger has one. An empty value of either is grouped as `(none)`.
- *time to protection*: `protectedAt` minus the creation time, which is the Event Grid `eventTime` when the
  server was discovered by an event and `firstSeenAt` otherwise; a negative difference (clock skew) counts as 0.
- *time to first backup*: the first successful backup job minus the same creation time; only when the caller
  passes those times, otherwise reported as unavailable with no numbers.
- *percentiles*: nearest-rank (the smallest sample with at least p % of the samples at or below it), so every
  figure is a duration that really happened; null for an empty sample.

The JSON format (`render(report, "json")`) has sorted keys and sorted lists, so two renders of the same ledger
are byte-identical and diffable. Its shape (schema `autoprotect.report.v1`):

    {
      "schema": "autoprotect.report.v1",
      "generatedAt": "2026-11-26T12:00:00Z",
      "summary": {"servers", "eligible", "protected", "protectedElsewhere", "covered", "unprotected",
                  "needsAttention", "skipped", "gone", "coveragePercent"},
      "coverage": {"bySubscription": [row], "byRegion": [row], "byTier": [row]},
          row = {"key", "servers", "eligible", "protected", "protectedElsewhere", "covered", "unprotected",
                 "skipped", "gone", "coveragePercent"}
      "unprotected": [{"serverId", "subscription", "resourceGroup", "name", "region", "tier", "state", "reason",
                       "firstSeenAt", "ageSeconds"}],
      "failures": [{"serverId", "subscription", "resourceGroup", "name", "region", "tier", "errorCode",
                    "errorMessage", "recommendedAction", "since"}],
      "latency": {"method": "nearest-rank",
                  "timeToProtection": {"available", "count", "p50Seconds", "p95Seconds", "note"},
                  "timeToFirstBackup": {"available", "count", "p50Seconds", "p95Seconds", "note"}}
    }

Times are ISO 8601 UTC strings, durations whole seconds (integers), percentages floats with one decimal.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from shared.ids import InvalidResourceId, ServerId
from shared.ledger import ServerRecord, State, parse_time
from shared.terminal import safe_text

SCHEMA = "autoprotect.report.v1"
NONE_GROUP = "(none)"
PERCENTILE_METHOD = "nearest-rank"
FORMATS = ("table", "json", "csv", "html")

CSV_COLUMNS = (
    "serverId",
    "subscription",
    "resourceGroup",
    "name",
    "region",
    "tier",
    "state",
    "reason",
    "rule",
    "vault",
    "errorCode",
    "recommendedAction",
    "firstSeenAt",
    "protectedAt",
    "timeToProtectionSeconds",
)

_NOT_ELIGIBLE = frozenset({State.SKIPPED, State.GONE})
_COVERED = frozenset({State.PROTECTED, State.PROTECTED_ELSEWHERE})
# A spreadsheet evaluates a cell starting with one of these as a formula; error messages are untrusted text.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# -- the model ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Counts for one group (a subscription, a region or a tier) or for the whole estate."""

    key: str
    servers: int
    eligible: int
    protected: int
    protected_elsewhere: int
    skipped: int
    gone: int

    @property
    def covered(self) -> int:
        return self.protected + self.protected_elsewhere

    @property
    def unprotected(self) -> int:
        return self.eligible - self.covered

    @property
    def percent(self) -> float | None:
        """None when nothing is eligible: an empty group is neither fully covered nor uncovered."""
        return None if self.eligible == 0 else round(100.0 * self.covered / self.eligible, 1)


@dataclass(frozen=True)
class ServerLine:
    """One server as the report shows it: the record's facts plus the derived grouping keys."""

    server_id: str
    subscription: str
    resource_group: str
    name: str
    region: str
    tier: str
    state: str
    reason: str
    rule: str
    vault: str
    error_code: str
    error_message: str
    recommended_action: str
    first_seen_at: str
    protected_at: str
    since: str
    age_seconds: int | None
    time_to_protection_seconds: int | None
    created_at: datetime | None


@dataclass(frozen=True)
class Latency:
    """Percentiles of a duration; `available` False means the data does not exist, not that it is zero."""

    available: bool
    count: int
    p50_seconds: int | None
    p95_seconds: int | None
    note: str


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    total: Coverage
    needs_attention: int
    by_subscription: tuple[Coverage, ...]
    by_region: tuple[Coverage, ...]
    by_tier: tuple[Coverage, ...]
    servers: tuple[ServerLine, ...]
    unprotected: tuple[ServerLine, ...]
    failures: tuple[ServerLine, ...]
    time_to_protection: Latency
    time_to_first_backup: Latency


# -- computation --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile, chosen so that a reported p95 is always a duration some server really took."""
    if not values:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(values)
    rank = math.ceil(pct / 100.0 * len(ordered))
    return ordered[max(rank, 1) - 1]


def region_of(record: ServerRecord) -> str:
    """ARM reports `westeurope` from one API and `West Europe` from another; both must land in one group."""
    return record.location.lower().replace(" ", "") or NONE_GROUP


def tier_of(record: ServerRecord) -> str:
    # `tier` is a newer ledger field; records written before it existed have none.
    return str(getattr(record, "tier", "") or "") or NONE_GROUP


def creation_time(record: ServerRecord) -> datetime | None:
    """When the server came to exist as far as we know: the ARM event time beats our own first sight."""
    return _parse_any(record.event_time) or _parse_any(record.first_seen_at)


def build_report(
    records: Iterable[ServerRecord],
    now: datetime,
    *,
    first_backup_at: Mapping[str, datetime] | None = None,
) -> Report:
    """Compute every figure of the report; `first_backup_at` maps lower-cased server IDs to a backup time."""
    now = _aware(now)
    lines = sorted((_line(record, now) for record in records), key=lambda line: line.server_id.lower())
    states = {line.server_id: State(line.state) for line in lines}

    def group(key_of: str) -> tuple[Coverage, ...]:
        buckets: dict[str, list[ServerLine]] = {}
        for line in lines:
            buckets.setdefault(getattr(line, key_of), []).append(line)
        return tuple(_coverage(key, members, states) for key, members in sorted(buckets.items()))

    unprotected = tuple(
        sorted(
            (line for line in lines if states[line.server_id] not in _NOT_ELIGIBLE | _COVERED),
            key=lambda line: (-(line.age_seconds or 0), line.server_id.lower()),
        )
    )
    failures = tuple(line for line in lines if states[line.server_id] == State.NEEDS_ATTENTION)
    protection = [line.time_to_protection_seconds for line in lines if line.time_to_protection_seconds is not None]
    return Report(
        generated_at=now,
        total=_coverage("all", lines, states),
        needs_attention=len(failures),
        by_subscription=group("subscription"),
        by_region=group("region"),
        by_tier=group("tier"),
        servers=tuple(lines),
        unprotected=unprotected,
        failures=failures,
        time_to_protection=_latency(protection, "from the ARM event time (else first sight) to Protected"),
        time_to_first_backup=_first_backup(lines, first_backup_at),
    )


def _coverage(key: str, lines: Sequence[ServerLine], states: Mapping[str, State]) -> Coverage:
    counted = [states[line.server_id] for line in lines]
    return Coverage(
        key=key,
        servers=len(counted),
        eligible=sum(1 for state in counted if state not in _NOT_ELIGIBLE),
        protected=counted.count(State.PROTECTED),
        protected_elsewhere=counted.count(State.PROTECTED_ELSEWHERE),
        skipped=counted.count(State.SKIPPED),
        gone=counted.count(State.GONE),
    )


def _latency(samples: Sequence[int], note: str) -> Latency:
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return Latency(
        available=True,
        count=len(samples),
        p50_seconds=None if p50 is None else int(p50),
        p95_seconds=None if p95 is None else int(p95),
        note=note,
    )


def _first_backup(lines: Sequence[ServerLine], first_backup_at: Mapping[str, datetime] | None) -> Latency:
    if first_backup_at is None:
        return Latency(False, 0, None, None, "not recorded: the ledger does not hold backup job times yet")
    by_key = {key.lower(): _aware(moment) for key, moment in first_backup_at.items()}
    samples: list[int] = []
    for line in lines:
        backup = by_key.get(line.server_id.lower())
        if backup is not None and line.created_at is not None:
            samples.append(max(0, round((backup - line.created_at).total_seconds())))
    return _latency(samples, "from the ARM event time (else first sight) to the first successful backup job")


def _line(record: ServerRecord, now: datetime) -> ServerLine:
    subscription, resource_group, name = _identity(record)
    first_seen = _parse_any(record.first_seen_at)
    protected = _parse_any(record.protected_at)
    created = creation_time(record)
    to_protection = None
    if protected is not None and created is not None:
        to_protection = max(0, round((protected - created).total_seconds()))
    return ServerLine(
        server_id=record.server_id,
        subscription=subscription,
        resource_group=resource_group,
        name=name,
        region=region_of(record),
        tier=tier_of(record),
        state=record.state.value,
        reason=record.reason,
        rule=record.rule,
        vault=record.vault_id.rstrip("/").rsplit("/", 1)[-1],
        error_code=record.error_code,
        error_message=record.error_message,
        recommended_action=record.error_action,
        first_seen_at=_normalised(record.first_seen_at),
        protected_at=_normalised(record.protected_at),
        since=_normalised(record.transitions.get(record.state.value) or record.state_changed_at),
        age_seconds=None if first_seen is None else max(0, round((now - first_seen).total_seconds())),
        time_to_protection_seconds=to_protection,
        created_at=created,
    )


def _identity(record: ServerRecord) -> tuple[str, str, str]:
    """Subscription, resource group and name; a record with a malformed ID is still reported, not dropped."""
    try:
        server = ServerId.parse(record.server_id)
    except InvalidResourceId:
        return "(unknown)", "", record.server_id
    return server.subscription_id, server.resource_group, server.name


def _parse_any(text: str) -> datetime | None:
    """The ledger's own format, else any ISO 8601 time (Event Grid sends seven fractional digits and a Z)."""
    if not text:
        return None
    parsed = parse_time(text)
    if parsed is not None:
        return parsed
    try:
        return _aware(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def _normalised(text: str) -> str:
    """One time format in every output, whatever the ledger or Event Grid wrote; unparsable text is kept."""
    parsed = _parse_any(text)
    return _iso(parsed) if parsed else text


def _human_time(text: str) -> str:
    parsed = _parse_any(text)
    return parsed.strftime("%Y-%m-%d %H:%M UTC") if parsed else (text or "unknown")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- rendering ----------------------------------------------------------------------------------------------------


def render(report: Report, fmt: str) -> str | Group:
    """The report in one of FORMATS: a rich renderable for `table`, text for the others."""
    if fmt == "table":
        return render_table(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def to_dict(report: Report) -> dict[str, Any]:
    """The JSON document described in the module docstring."""
    total = report.total
    return {
        "schema": SCHEMA,
        "generatedAt": _iso(report.generated_at),
        "summary": {
            "servers": total.servers,
            "eligible": total.eligible,
            "protected": total.protected,
            "protectedElsewhere": total.protected_elsewhere,
            "covered": total.covered,
            "unprotected": total.unprotected,
            "needsAttention": report.needs_attention,
            "skipped": total.skipped,
            "gone": total.gone,
            "coveragePercent": total.percent,
        },
        "coverage": {
            "bySubscription": [_coverage_dict(row) for row in report.by_subscription],
            "byRegion": [_coverage_dict(row) for row in report.by_region],
            "byTier": [_coverage_dict(row) for row in report.by_tier],
        },
        "unprotected": [
            {
                **_where(line),
                "state": line.state,
                "reason": line.reason,
                "firstSeenAt": line.first_seen_at,
                "ageSeconds": line.age_seconds,
            }
            for line in report.unprotected
        ],
        "failures": [
            {
                **_where(line),
                "errorCode": line.error_code,
                "errorMessage": line.error_message,
                "recommendedAction": line.recommended_action,
                "since": line.since,
            }
            for line in report.failures
        ],
        "latency": {
            "method": PERCENTILE_METHOD,
            "timeToProtection": _latency_dict(report.time_to_protection),
            "timeToFirstBackup": _latency_dict(report.time_to_first_backup),
        },
    }


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_csv(report: Report) -> str:
    """One row per server, for spreadsheets; cells that a spreadsheet would run as a formula get a `'` first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for line in report.servers:
        row: list[object] = [
            line.server_id,
            line.subscription,
            line.resource_group,
            line.name,
            line.region,
            line.tier,
            line.state,
            line.reason,
            line.rule,
            line.vault,
            line.error_code,
            line.recommended_action,
            line.first_seen_at,
            line.protected_at,
            "" if line.time_to_protection_seconds is None else line.time_to_protection_seconds,
        ]
        writer.writerow([_csv_cell(value) for value in row])
    return out.getvalue()


def render_table(report: Report) -> Group:
    """Ledger text goes into cells as Text, never as markup: a reason like `[/x]` must print, not crash rich."""
    total = report.total
    summary = Text.assemble(
        ("Coverage ", "bold"),
        (_percent(total.percent), "bold green" if total.unprotected == 0 else "bold yellow"),
        f"  {total.covered} of {total.eligible} eligible servers covered "
        f"({total.protected} by autoprotect, {total.protected_elsewhere} elsewhere); "
        f"{total.unprotected} unprotected, {report.needs_attention} need attention; "
        f"{total.skipped} skipped, {total.gone} gone. Generated {_iso(report.generated_at)}.",
    )
    parts: list[Table | Text] = [summary]
    for title, rows in (
        ("by subscription", report.by_subscription),
        ("by region", report.by_region),
        ("by tier", report.by_tier),
    ):
        table = Table(title=f"Coverage {title}", title_justify="left")
        for column in ("", "eligible", "protected", "elsewhere", "unprotected", "coverage", "skipped", "gone"):
            table.add_column(column, justify="left" if not column else "right", overflow="fold")
        for row in rows:
            table.add_row(
                safe_text(row.key),
                str(row.eligible),
                str(row.protected),
                str(row.protected_elsewhere),
                str(row.unprotected),
                _percent(row.percent),
                str(row.skipped),
                str(row.gone),
            )
        parts.append(table)
    if report.unprotected:
        table = Table(title=f"Unprotected ({len(report.unprotected)})", title_justify="left")
        for column in ("server", "region", "state", "age", "reason"):
            table.add_column(column, overflow="fold")
        for line in report.unprotected:
            table.add_row(
                safe_text(f"{line.resource_group}/{line.name}"),
                safe_text(line.region),
                safe_text(line.state),
                safe_text(_duration(line.age_seconds)),
                safe_text(line.reason),
            )
        parts.append(table)
    if report.failures:
        table = Table(title=f"Needs attention ({len(report.failures)})", title_justify="left")
        for column in ("server", "error", "recommended action"):
            table.add_column(column, overflow="fold")
        for line in report.failures:
            table.add_row(
                safe_text(f"{line.resource_group}/{line.name}"),
                safe_text(f"{line.error_code}: {line.error_message}" if line.error_code else line.reason),
                safe_text(line.recommended_action),
            )
        parts.append(table)
    parts.append(
        Text(
            f"Time to protection: {_latency_text(report.time_to_protection)}\n"
            f"Time to first backup: {_latency_text(report.time_to_first_backup)}\n"
            f"(percentiles: {PERCENTILE_METHOD})"
        )
    )
    return Group(*parts)


def _coverage_dict(row: Coverage) -> dict[str, Any]:
    return {
        "key": row.key,
        "servers": row.servers,
        "eligible": row.eligible,
        "protected": row.protected,
        "protectedElsewhere": row.protected_elsewhere,
        "covered": row.covered,
        "unprotected": row.unprotected,
        "skipped": row.skipped,
        "gone": row.gone,
        "coveragePercent": row.percent,
    }


def _where(line: ServerLine) -> dict[str, Any]:
    return {
        "serverId": line.server_id,
        "subscription": line.subscription,
        "resourceGroup": line.resource_group,
        "name": line.name,
        "region": line.region,
        "tier": line.tier,
    }


def _latency_dict(latency: Latency) -> dict[str, Any]:
    return {
        "available": latency.available,
        "count": latency.count,
        "p50Seconds": latency.p50_seconds,
        "p95Seconds": latency.p95_seconds,
        "note": latency.note,
    }


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _duration(seconds: int | None) -> str:
    """Two units at most: an operator reads "3 h 05 min", not 11100 seconds."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _latency_text(latency: Latency) -> str:
    if not latency.available:
        return f"unavailable ({latency.note})"
    if latency.count == 0:
        return "no samples yet"
    return (
        f"p50 {_duration(latency.p50_seconds)}, p95 {_duration(latency.p95_seconds)} "
        f"over {latency.count} server{'s' if latency.count != 1 else ''}"
    )


# -- HTML ---------------------------------------------------------------------------------------------------------

# One page, no external resources: it is mailed, archived and printed, and must look the same offline in years.
_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --ok: #1a7f37; --warn: #9a6700;
        --bad: #cf222e; --accent: #0969da; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 32px 40px; }
h1 { font-size: 24px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 0 0 6px; }
.meta, .note { color: var(--muted); font-size: 12px; }
.headline { display: flex; align-items: baseline; gap: 12px; margin: 18px 0 8px; flex-wrap: wrap; }
.big { font-size: 40px; font-weight: 700; line-height: 1; }
.big.ok { color: var(--ok); } .big.warn { color: var(--warn); } .big.bad { color: var(--bad); }
.bar { background: #eaeef2; border-radius: 4px; height: 10px; overflow: hidden; min-width: 60px; }
.bar > span { display: block; height: 100%; background: var(--ok); }
.bar.warn > span { background: var(--warn); } .bar.bad > span { background: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(7, 1fr); gap: 8px; margin: 16px 0 4px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; background: var(--soft); }
.card .n { font-size: 22px; font-weight: 700; display: block; }
.card .l { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.card.ok .n { color: var(--ok); } .card.warn .n { color: var(--warn); } .card.bad .n { color: var(--bad); }
table { width: 100%; border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; break-after: avoid; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
table.coverage { table-layout: fixed; }
table.coverage col.key { width: 30%; } table.coverage col.cov { width: 24%; }
.covcell { display: flex; align-items: center; gap: 8px; }
.covcell .pct { flex: 0 0 52px; text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.covcell .bar { flex: 1 1 auto; }
table.servers td .meta { font-size: 11px; margin-top: 1px; }
.id { overflow-wrap: anywhere; word-break: break-word; }
.state { white-space: nowrap; font-size: 12px; padding: 1px 6px; border-radius: 10px; background: #eaeef2; }
.state.NeedsAttention { background: #ffebe9; color: var(--bad); }
.failure { border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 6px;
           padding: 10px 14px; margin: 0 0 10px; }
.failure dl { display: grid; grid-template-columns: 150px 1fr; gap: 4px 12px; margin: 6px 0 0; }
.failure dt { color: var(--muted); font-size: 12px; }
.failure dd { margin: 0; overflow-wrap: anywhere; }
.failure dd.action { font-weight: 600; }
code { font: 12px/1.4 ui-monospace, "SFMono-Regular", Consolas, "Liberation Mono", monospace; }
.empty { color: var(--ok); font-weight: 600; }
.unavailable { color: var(--muted); font-style: italic; }
footer { margin-top: 36px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted);
         font-size: 12px; }
footer dt { font-weight: 600; color: var(--ink); } footer dd { margin: 0 0 6px 0; }
@media screen and (max-width: 800px) { .cards { grid-template-columns: repeat(3, 1fr); } }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, .failure, .card { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  table { font-size: 9pt; }
  th, td { padding: 3px 5px; }
  th { font-size: 7.5pt; }
  table.coverage { break-inside: avoid; page-break-inside: avoid; }
  table.coverage col.key { width: 24%; } table.coverage col.cov { width: 22%; }
  .big { font-size: 30pt; }
  .cards { gap: 4px; }
  .card { padding: 4px 6px; }
  .card .n { font-size: 15pt; }
  .card .l { font-size: 7pt; }
}
"""


def render_html(report: Report) -> str:
    """A self-contained page; every value from the ledger goes through html.escape (names and errors are untrusted)."""
    total = report.total
    generated = report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    tone = _tone(total)
    cards = "".join(
        _card(label, value, css)
        for label, value, css in (
            ("eligible", total.eligible, ""),
            ("protected", total.protected, "ok"),
            ("protected elsewhere", total.protected_elsewhere, "ok"),
            ("unprotected", total.unprotected, "warn" if total.unprotected else "ok"),
            ("needs attention", report.needs_attention, "bad" if report.needs_attention else "ok"),
            ("skipped", total.skipped, ""),
            ("gone", total.gone, ""),
        )
    )
    sentence = (
        f"{total.covered} of {total.eligible} eligible servers are covered: {total.protected} protected by "
        f"autoprotect and {total.protected_elsewhere} protected elsewhere. {total.unprotected} "
        f"{'is' if total.unprotected == 1 else 'are'} not protected yet, of which {report.needs_attention} "
        f"need{'s' if report.needs_attention == 1 else ''} attention. {total.skipped} skipped by rule and "
        f"{total.gone} deleted servers are not counted as eligible."
    )
    body = [
        "<header>",
        "<h1>PostgreSQL flexible server backup coverage</h1>",
        f'<p class="meta">autoprotect report &middot; generated {_e(generated)} &middot; '
        f"{total.servers} servers in the ledger</p>",
        "</header>",
        '<section id="summary">',
        '<div class="headline">',
        f'<span class="big {tone}">{_e(_percent(total.percent))}</span>',
        "<span>of eligible servers are covered by a backup</span>",
        "</div>",
        _bar(total.percent, tone),
        f'<div class="cards">{cards}</div>',
        f"<p>{_e(sentence)}</p>",
        "</section>",
        _failures_html(report),
        _unprotected_html(report),
        '<section id="coverage">',
        "<h2>Coverage</h2>",
        _coverage_html("By subscription", report.by_subscription),
        _coverage_html("By region", report.by_region),
        _coverage_html("By tier", report.by_tier),
        "</section>",
        _latency_html(report),
        _definitions_html(),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>autoprotect coverage report, {_e(generated)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _tone(row: Coverage) -> str:
    if row.percent is None or row.unprotected == 0:
        return "ok"
    return "bad" if row.percent < 90 else "warn"


def _bar(percent: float | None, tone: str) -> str:
    width = 0.0 if percent is None else max(0.0, min(100.0, percent))
    label = f"{width:.1f} %"
    return f'<div class="bar {tone}" role="img" aria-label="{label}"><span style="width:{width:.1f}%"></span></div>'


def _card(label: str, value: int, css: str) -> str:
    return f'<div class="card {css}"><span class="n">{value}</span><span class="l">{_e(label)}</span></div>'


def _state(state: str) -> str:
    return f'<span class="state {_e(state)}">{_e(state)}</span>'


def _failures_html(report: Report) -> str:
    parts = ['<section id="attention">', f"<h2>Needs attention ({len(report.failures)})</h2>"]
    if not report.failures:
        parts.append('<p class="empty">No server needs attention.</p>')
    for line in report.failures:
        parts.append('<article class="failure">')
        parts.append(f'<h3 class="id">{_e(line.resource_group)}/{_e(line.name)}</h3>')
        parts.append(
            f'<div class="meta id">subscription {_e(line.subscription)} &middot; region {_e(line.region)} '
            f"&middot; tier {_e(line.tier)} &middot; needs attention since {_e(_human_time(line.since))}</div>"
        )
        parts.append("<dl>")
        parts.append(f"<dt>error code</dt><dd><code>{_e(line.error_code or 'none recorded')}</code></dd>")
        parts.append(f"<dt>message</dt><dd>{_e(line.error_message or line.reason or 'none recorded')}</dd>")
        parts.append(
            f'<dt>recommended action</dt><dd class="action">{_e(line.recommended_action or "none given by Azure")}</dd>'
        )
        parts.append(f'<dt>server ID</dt><dd class="id"><code>{_e(line.server_id)}</code></dd>')
        parts.append("</dl></article>")
    parts.append("</section>")
    return "\n".join(parts)


def _unprotected_html(report: Report) -> str:
    parts = ['<section id="unprotected">', f"<h2>Unprotected servers ({len(report.unprotected)})</h2>"]
    if not report.unprotected:
        parts.append('<p class="empty">Every eligible server is covered.</p></section>')
        return "\n".join(parts)
    parts.append('<p class="note">Eligible servers without a backup, oldest first; age counts from first sight.</p>')
    parts.append(
        '<table class="servers"><thead><tr><th>server</th><th>region</th><th>tier</th><th>state</th>'
        '<th class="num">age</th><th>reason</th></tr></thead><tbody>'
    )
    for line in report.unprotected:
        parts.append(
            f'<tr><td class="id">{_e(line.resource_group)}/<b>{_e(line.name)}</b>'
            f'<div class="meta">subscription {_e(line.subscription)}</div></td><td>{_e(line.region)}</td>'
            f"<td>{_e(line.tier)}</td><td>{_state(line.state)}</td>"
            f'<td class="num">{_e(_duration(line.age_seconds))}</td><td>{_e(line.reason)}</td></tr>'
        )
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


# The same column widths in all three coverage tables, so they read as one grid.
_COVERAGE_COLUMNS = '<colgroup><col class="key"><col><col><col><col><col class="cov"><col><col></colgroup>'


def _coverage_html(title: str, rows: Sequence[Coverage]) -> str:
    parts = [
        f'<table class="coverage"><caption>{_e(title)}</caption>{_COVERAGE_COLUMNS}<thead><tr><th></th>'
        '<th class="num">eligible</th><th class="num">protected</th><th class="num">elsewhere</th>'
        '<th class="num">unprotected</th><th>coverage</th>'
        '<th class="num">skipped</th><th class="num">gone</th></tr></thead><tbody>'
    ]
    if not rows:
        parts.append('<tr><td colspan="8" class="unavailable">no servers</td></tr>')
    for row in rows:
        parts.append(
            f'<tr><td class="id"><code>{_e(row.key)}</code></td><td class="num">{row.eligible}</td>'
            f'<td class="num">{row.protected}</td><td class="num">{row.protected_elsewhere}</td>'
            f'<td class="num">{row.unprotected}</td>'
            f'<td class="cov"><div class="covcell"><span class="pct">{_e(_percent(row.percent))}</span>'
            f"{_bar(row.percent, _tone(row)) if row.percent is not None else ''}</div></td>"
            f'<td class="num">{row.skipped}</td><td class="num">{row.gone}</td></tr>'
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def _latency_html(report: Report) -> str:
    rows = []
    for label, latency in (
        ("Creation to protection", report.time_to_protection),
        ("Creation to first successful backup", report.time_to_first_backup),
    ):
        if not latency.available:
            figures = '<td class="num">&ndash;</td><td class="num">&ndash;</td><td class="num">&ndash;</td>'
            note = f'<td class="unavailable">unavailable: {_e(latency.note)}</td>'
        else:
            figures = (
                f'<td class="num">{_e(_duration(latency.p50_seconds))}</td>'
                f'<td class="num">{_e(_duration(latency.p95_seconds))}</td><td class="num">{latency.count}</td>'
            )
            note = f"<td>{_e(latency.note if latency.count else 'no samples yet')}</td>"
        rows.append(f"<tr><td>{_e(label)}</td>{figures}{note}</tr>")
    return (
        '<section id="latency"><h2>Speed</h2>'
        '<table><thead><tr><th>measure</th><th class="num">p50</th><th class="num">p95</th>'
        '<th class="num">servers</th><th>measured</th></tr></thead><tbody>'
        + "".join(rows)
        + f'</tbody></table><p class="note">Percentiles are {PERCENTILE_METHOD}: each figure is a duration one '
        "server really took.</p></section>"
    )


def _definitions_html() -> str:
    return (
        "<footer><dl>"
        "<dt>Eligible</dt><dd>Every server in the ledger except those skipped by a rule (opt-out tag, read "
        "replica, region without a vault) and those deleted since.</dd>"
        "<dt>Covered</dt><dd>Protected by autoprotect, or protected elsewhere (a vault that autoprotect does not "
        "manage already backs the server up).</dd>"
        "<dt>Unprotected</dt><dd>Eligible and not covered: still in progress, waiting for the server or for "
        "permissions, or needing attention.</dd>"
        "<dt>Creation time</dt><dd>The time of the Azure Resource Manager event that created the server, or when "
        "autoprotect first saw it if it did not come from an event.</dd>"
        "</dl></footer>"
    )
