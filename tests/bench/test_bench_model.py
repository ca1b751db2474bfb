"""The benchmark's pure computations: lower bound, ideal schedule, percentiles, per-server figures."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from emulator.config import DEFAULTS
from scripts import bench_model as model
from scripts.bench import DEFAULT_CLOCK_SCALE

BENCH = model.Params.from_config({**DEFAULTS, "clock_scale": 1.0})


def test_params_come_from_the_emulator_config() -> None:
    assert BENCH.writes_burst == 200
    assert BENCH.writes_per_s == 10
    assert (BENCH.server_create_s, BENCH.validate_s, BENCH.instance_create_s, BENCH.protection_configure_s) == (
        300,
        30,
        60,
        120,
    )
    assert BENCH.chain_s == 510


def test_lower_bound_at_1000_servers_is_the_write_bucket() -> None:
    # Ready at 300; 2000 writes, 200 from the burst, 1800 at 10/s = 180; then create 60 + configure 120.
    assert model.lower_bound(1000, BENCH) == pytest.approx(300 + 180 + 180)


def test_lower_bound_for_few_servers_is_the_chain() -> None:
    # 50 servers: 100 writes fit in the burst, so one server's chain of latencies is the bound.
    assert model.lower_bound(50, BENCH) == pytest.approx(510)
    # Between: 150 servers, 300 writes, 100 beyond the burst take 10 s; validations (150) fit in the burst.
    assert model.lower_bound(150, BENCH) == pytest.approx(300 + max(0 + 30, 10) + 180)
    # 400 servers: the last validation waits (400-200)/10 = 20 s, then 30 s of validation; 600/10 = 60 s wins.
    assert model.lower_bound(400, BENCH) == pytest.approx(300 + max(20 + 30, 60) + 180)


def test_lower_bound_scales_with_the_clock() -> None:
    scaled = replace(BENCH, clock_scale=0.1)
    assert model.lower_bound(1000, scaled) == pytest.approx(66.0)
    assert scaled.write_rate == pytest.approx(100.0)


def test_lower_bound_honours_a_slow_creation_of_the_estate() -> None:
    assert model.lower_bound(10, BENCH, creation_spread_s=100) == pytest.approx(100 + 510)
    assert model.lower_bound(0, BENCH) == 0


def test_the_reads_bucket_binds_when_reads_are_scarce() -> None:
    # 5 reads per server after Ready: 5000 reads, 250 from the burst, 4750 at 5/s = 950 s > the writes' 180 s.
    scarce = replace(BENCH, reads_per_s=5)
    assert model.lower_bound(1000, scarce) == pytest.approx(300 + 950)
    # At the defaults the reads bucket (25/s) needs 190 s after Ready, less than the writes' 360 s.
    assert model.lower_bound(1000, BENCH) == pytest.approx(660)


def test_lower_bound_without_throttling_is_the_chain() -> None:
    assert model.lower_bound(5000, replace(BENCH, throttle_enabled=False)) == pytest.approx(510)


def test_default_scale_makes_the_1000_server_bound_about_a_minute() -> None:
    bound = model.lower_bound(1000, replace(BENCH, clock_scale=DEFAULT_CLOCK_SCALE))
    assert 50 <= bound <= 70
    assert model.scale_for_target(1000, BENCH, 60) == pytest.approx(60 / 660)


@pytest.mark.parametrize("n", [1, 50, 150, 400, 1000, 5000])
def test_ideal_schedule_finishes_exactly_at_the_bound(n: int) -> None:
    times = model.ideal_finish_times(n, BENCH)
    assert len(times) == n
    assert times == sorted(times)
    assert max(times) == pytest.approx(model.lower_bound(n, BENCH))
    # The schedule respects the bucket: by server k's creation, N validations and k creations were admitted,
    # never more than B + r * (time since Ready); and each creation follows its validation by Lv at least.
    for k, finished in enumerate(times, start=1):
        created = finished - 180 - 300
        assert n + k <= 200 + 10 * created + 1e-6
        assert created >= max(0, k - 200) / 10 + 30 - 1e-9


def test_percentile_interpolates_like_numpy() -> None:
    values = [10.0, 1.0, 4.0, 3.0, 2.0]
    assert model.percentile(values, 50) == 3.0
    assert model.percentile(values, 0) == 1.0
    assert model.percentile(values, 100) == 10.0
    assert model.percentile(values, 95) == pytest.approx(8.8)  # numpy.percentile(values, 95)
    assert model.percentile([5.0], 95) == 5.0
    assert math.isnan(model.percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        model.percentile(values, 101)


def test_requests_per_server_and_the_minimum() -> None:
    counts = {"read": 330, "write": 200, "poll": 210, "token": 1}
    per = model.per_server(counts, 100)
    assert per == {"read": 3.3, "write": 2.0, "poll": 2.1, "delete": 0.0, "token": 0.01, "arm_total": 7.4}
    assert model.excess_over_minimum(per) == pytest.approx(7.4 / 7)
    assert model.per_server(counts, 0) == {}
    assert sum(model.MIN_REQUESTS_PER_SERVER.values()) == 7


def test_growth_exponent() -> None:
    assert model.growth_exponent([(100, 10.0), (1000, 100.0), (5000, 500.0)]) == pytest.approx(1.0)
    assert model.growth_exponent([(100, 1.0), (1000, 100.0)]) == pytest.approx(2.0)
    assert math.isnan(model.growth_exponent([(100, 1.0)]))


def test_step_curve() -> None:
    assert model.step_curve([3.0, 1.0]) == ([0.0, 1.0, 3.0], [0, 1, 2])
