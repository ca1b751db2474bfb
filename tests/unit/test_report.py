"""The coverage report: figures computed from hand-built ledger records, and each format's contract."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console, Group

from shared.ledger import ServerRecord, State, format_time
from shared.report import (
    CSV_COLUMNS,
    build_report,
    percentile,
    render,
    render_csv,
    render_html,
    render_json,
    to_dict,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SUB_A = "00000000-0000-0000-0000-00000000000a"
SUB_B = "00000000-0000-0000-0000-00000000000b"
VAULT = f"/subscriptions/{SUB_A}/resourceGroups/backup/providers/Microsoft.DataProtection/backupVaults/vault-weu"


def server_id(name: str, sub: str = SUB_A, rg: str = "rg-app") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"


def record(
    name: str,
    state: State,
    *,
    sub: str = SUB_A,
    location: str = "westeurope",
    tier: str | None = None,
    seen_ago: timedelta = timedelta(hours=1),
    event_ago: timedelta | None = None,
    protected_after: timedelta | None = None,
    reason: str = "",
    error: tuple[str, str, str] | None = None,
) -> ServerRecord:
    """A ledger record as the flow leaves it; `protected_after` counts from creation (event, else first sight)."""
    first_seen = NOW - seen_ago
    rec = ServerRecord(
        server_id=server_id(name, sub),
        state=state,
        reason=reason,
        location=location,
        vault_id=VAULT if state == State.PROTECTED else "",
        first_seen_at=format_time(first_seen),
        state_changed_at=format_time(NOW - timedelta(minutes=5)),
    )
    rec.transitions[state.value] = rec.state_changed_at
    created = first_seen
    if event_ago is not None:
        created = NOW - event_ago
        rec.event_time = created.strftime("%Y-%m-%dT%H:%M:%S.1234567Z")  # Event Grid's seven digits
    if protected_after is not None:
        rec.protected_at = format_time(created + protected_after)
    if error:
        rec.set_error(*error)
    if tier is not None:
        # The field the ledger is about to get; set through __dict__ so this typechecks before and after it lands.
        rec.__dict__["tier"] = tier
    return rec


def estate() -> list[ServerRecord]:
    """A small estate with one server in every interesting state; shared with the Chromium rendering test."""
    return [
        record("orders-db", State.PROTECTED, tier="GeneralPurpose", protected_after=timedelta(minutes=4)),
        record(
            "billing-db",
            State.PROTECTED,
            location="West Europe",
            tier="MemoryOptimized",
            event_ago=timedelta(hours=3),
            protected_after=timedelta(minutes=10),
        ),
        record(
            "ledger-db",
            State.PROTECTED,
            sub=SUB_B,
            location="northeurope",
            tier="GeneralPurpose",
            protected_after=timedelta(minutes=7),
        ),
        record("shared-db", State.PROTECTED_ELSEWHERE, tier="GeneralPurpose", reason="protected in vault team-x"),
        record("scratch-db", State.SKIPPED, tier="Burstable", reason="opt-out tag autoprotect=off"),
        record("replica-db", State.SKIPPED, location="northeurope", reason="read replica"),
        record("old-db", State.GONE, reason="server deleted"),
        record(
            "reports-db",
            State.NEEDS_ATTENTION,
            sub=SUB_B,
            location="northeurope",
            tier="GeneralPurpose",
            seen_ago=timedelta(days=2, hours=3),
            reason="validation failed <script>alert(1)</script>",
            error=(
                "UserErrorMissingRequiredPermissions",
                'The vault\'s identity lacks "Reader" on <b>rg-app</b> & the server',
                "Assign the PostgreSQL Flexible Server Long Term Retention Backup Role to the vault's identity.",
            ),
        ),
        record("new-db", State.CONFIGURING, location="swedencentral", seen_ago=timedelta(minutes=12)),
        record("cmd-db", State.QUEUED, seen_ago=timedelta(minutes=2), reason='=HYPERLINK("http://x")'),
    ]


# -- figures --------------------------------------------------------------------------------------------------


def test_totals_count_elsewhere_as_covered_and_leave_skipped_and_gone_out():
    report = build_report(estate(), NOW)
    total = report.total
    assert (total.servers, total.eligible) == (10, 7)
    assert (total.protected, total.protected_elsewhere, total.covered, total.unprotected) == (3, 1, 4, 3)
    assert (total.skipped, total.gone, report.needs_attention) == (2, 1, 1)
    assert total.percent == pytest.approx(57.1)


def test_coverage_groups_by_subscription_region_and_tier():
    report = build_report(estate(), NOW)
    by_sub = {row.key: row for row in report.by_subscription}
    assert set(by_sub) == {SUB_A, SUB_B}
    assert (by_sub[SUB_B].eligible, by_sub[SUB_B].covered) == (2, 1)
    by_region = {row.key: (row.eligible, row.protected, row.skipped) for row in report.by_region}
    # "West Europe" and "westeurope" are one region.
    assert by_region == {
        "westeurope": (4, 2, 1),
        "northeurope": (2, 1, 1),
        "swedencentral": (1, 0, 0),
    }
    by_tier = {row.key: (row.servers, row.eligible, row.covered) for row in report.by_tier}
    assert by_tier == {
        "GeneralPurpose": (4, 4, 3),
        "MemoryOptimized": (1, 1, 1),
        "Burstable": (1, 0, 0),
        "(none)": (4, 2, 0),
    }
    assert [row.key for row in report.by_tier] == sorted(by_tier)


def test_unprotected_lists_every_uncovered_eligible_server_oldest_first_with_age_and_reason():
    report = build_report(estate(), NOW)
    assert [line.name for line in report.unprotected] == ["reports-db", "new-db", "cmd-db"]
    oldest = report.unprotected[0]
    assert oldest.age_seconds == int(timedelta(days=2, hours=3).total_seconds())
    assert oldest.reason.startswith("validation failed")
    assert report.unprotected[1].age_seconds == 12 * 60


def test_failures_carry_code_message_and_recommended_action():
    (failure,) = build_report(estate(), NOW).failures
    assert failure.name == "reports-db"
    assert failure.error_code == "UserErrorMissingRequiredPermissions"
    assert "Reader" in failure.error_message
    assert failure.recommended_action.startswith("Assign")


def test_time_to_protection_starts_at_the_event_time_when_there_is_one():
    report = build_report(estate(), NOW)
    by_name = {line.name: line.time_to_protection_seconds for line in report.servers}
    assert by_name["billing-db"] == 600  # from the event three hours ago, not from first sight
    assert by_name["orders-db"] == 240
    latency = report.time_to_protection
    assert (latency.available, latency.count) == (True, 3)
    assert (latency.p50_seconds, latency.p95_seconds) == (420, 600)


def test_time_to_first_backup_is_unavailable_unless_given():
    report = build_report(estate(), NOW)
    latency = report.time_to_first_backup
    assert not latency.available
    assert (latency.count, latency.p50_seconds, latency.p95_seconds) == (0, None, None)
    assert to_dict(report)["latency"]["timeToFirstBackup"]["p50Seconds"] is None


def test_time_to_first_backup_from_a_mapping_keyed_by_lower_cased_id():
    records = estate()
    created = NOW - timedelta(hours=1)  # orders-db has no event: first sight
    report = build_report(records, NOW, first_backup_at={server_id("orders-db").upper(): created + timedelta(hours=2)})
    latency = report.time_to_first_backup
    assert (latency.available, latency.count, latency.p50_seconds, latency.p95_seconds) == (True, 1, 7200, 7200)
    empty = build_report(records, NOW, first_backup_at={}).time_to_first_backup
    assert (empty.available, empty.count, empty.p50_seconds) == (True, 0, None)


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([], 50, None),
        ([7], 50, 7),
        ([7], 95, 7),
        ([1, 2, 3, 4], 50, 2),
        ([4, 3, 2, 1], 95, 4),
        (list(range(1, 101)), 95, 95),
        (list(range(1, 101)), 50, 50),
        ([10, 20], 100, 20),
    ],
)
def test_percentile_is_nearest_rank(values, pct, expected):
    assert percentile(values, pct) == expected


def test_percentile_refuses_out_of_range():
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)


def test_empty_ledger_reports_no_coverage_rather_than_a_perfect_one():
    report = build_report([], NOW)
    assert report.total.percent is None
    assert report.time_to_protection.count == 0
    document = to_dict(report)
    assert document["summary"]["coveragePercent"] is None
    assert document["latency"]["timeToProtection"] == {
        "available": True,
        "count": 0,
        "p50Seconds": None,
        "p95Seconds": None,
        "note": document["latency"]["timeToProtection"]["note"],
    }
    for fmt in ("json", "csv", "html"):
        assert render(report, fmt)
    Console(file=io.StringIO(), width=120).print(render(report, "table"))


def test_a_malformed_server_id_is_reported_not_dropped():
    broken = ServerRecord(server_id="not-an-id", state=State.QUEUED, first_seen_at=format_time(NOW))
    report = build_report([broken], NOW)
    assert report.unprotected[0].subscription == "(unknown)"
    assert report.unprotected[0].name == "not-an-id"


# -- formats --------------------------------------------------------------------------------------------------


def test_json_is_stable_and_has_the_documented_keys():
    first = render_json(build_report(estate(), NOW))
    second = render_json(build_report(list(reversed(estate())), NOW))
    assert first == second
    document = json.loads(first)
    assert document["schema"] == "autoprotect.report.v1"
    assert document["generatedAt"] == "2026-11-26T12:00:00Z"
    assert set(document) == {"schema", "generatedAt", "summary", "coverage", "unprotected", "failures", "latency"}
    assert set(document["summary"]) == {
        "servers",
        "eligible",
        "protected",
        "protectedElsewhere",
        "covered",
        "unprotected",
        "needsAttention",
        "skipped",
        "gone",
        "coveragePercent",
    }
    assert set(document["coverage"]) == {"bySubscription", "byRegion", "byTier"}
    assert document["latency"]["method"] == "nearest-rank"
    assert document["failures"][0]["recommendedAction"].startswith("Assign")
    assert document["unprotected"][0]["ageSeconds"] == (2 * 24 + 3) * 3600


def test_csv_parses_back_one_row_per_server():
    text = render_csv(build_report(estate(), NOW))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 10
    by_name = {row["name"]: row for row in rows}
    assert by_name["billing-db"]["region"] == "westeurope"
    assert by_name["billing-db"]["timeToProtectionSeconds"] == "600"
    assert by_name["billing-db"]["vault"] == "vault-weu"
    assert by_name["new-db"]["timeToProtectionSeconds"] == ""
    assert by_name["reports-db"]["errorCode"] == "UserErrorMissingRequiredPermissions"
    assert by_name["reports-db"]["tier"] == "GeneralPurpose"
    # A spreadsheet must not run untrusted text as a formula.
    assert by_name["cmd-db"]["reason"] == '\'=HYPERLINK("http://x")'


def test_html_escapes_every_untrusted_value():
    page = render_html(build_report(estate(), NOW))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>rg-app</b>" not in page
    assert "&lt;b&gt;rg-app&lt;/b&gt; &amp; the server" in page
    assert "&quot;Reader&quot;" in page


def test_html_is_self_contained():
    page = render_html(build_report(estate(), NOW))
    lowered = page.lower()
    for external in ("<link", "<script", "<img", "<iframe", "@import", "url(", "src=", "href="):
        assert external not in lowered, external
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="summary"' in page and "57.1 %" in page
    assert "Assign the PostgreSQL Flexible Server Long Term Retention Backup Role" in page
    assert "unavailable: not recorded" in page


def test_table_renders_with_rich():
    table = render(build_report(estate(), NOW), "table")
    assert isinstance(table, Group)
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(table)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "57.1 %" in output
    assert "UserErrorMissingRequiredPermissions" in output
    assert "Time to first backup: unavailable" in output


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown report format"):
        render(build_report([], NOW), "pdf")


def test_table_prints_rich_markup_in_untrusted_text_literally():
    rec = record("markup-db", State.NEEDS_ATTENTION, reason="[/bold] [red]x", error=("[link=x]Code", "[/]", "[b]do"))
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render(build_report([rec], NOW), "table"))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/bold] [red]x" in output
    assert "[link=x]Code: [/]" in output
