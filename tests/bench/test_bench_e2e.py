"""`python -m scripts.bench` end to end on five servers with a fast clock (about 20 s on the 2-core box)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import bench

pytestmark = pytest.mark.integration

KEYS = {
    "makespan_s",
    "lower_bound_s",
    "ratio_to_limit",
    "requests_per_server",
    "min_requests_per_server",
    "token_requests",
    "throttled_429",
    "function_seconds_per_server",
    "latency_p50_s",
    "latency_p95_s",
    "speedup_vs_naive",
    "cost_ratio_vs_naive",
    "cold_start",
    "peak_rss_bytes",
}


def test_five_servers_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--servers", "5", "--clock-scale", "0.01", "--naive-subset", "1", "--cold-start-runs", "1"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary.keys() >= KEYS
    assert summary["protected"] == 5
    assert summary["duplicate_instances"] == 0
    assert summary["requests_per_server"]["write"] == 2.0
    assert summary["ratio_to_limit"] >= 1.0  # nothing beats the bound
    assert summary["token_requests"] == 1
    assert (tmp_path / "bench.png").stat().st_size > 0
    assert json.loads((tmp_path / "bench.json").read_text())["servers"] == 5
