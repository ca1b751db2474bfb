"""Sans-IO pieces: clock, throttle math, ids, route templates, tokens, state indexes and snapshots."""

from __future__ import annotations

import pytest

from emulator.core import ids
from emulator.core.clock import Clock
from emulator.core.operations import Operations, new_operation_id
from emulator.core.store import State
from emulator.core.tokens import TokenError, TokenIssuer
from emulator.routing import compile_template
from emulator.throttle import Throttle


class FakeTime:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_clock_scales_durations_and_floors_retry_after() -> None:
    clock = Clock(scale=0.01, now=FakeTime())
    assert clock.real(300) == pytest.approx(3.0)
    assert clock.retry_after(10) == 1
    assert Clock(scale=1.0).retry_after(59.2) == 60


def test_throttle_refills_on_the_scaled_clock() -> None:
    fake = FakeTime()
    clock = Clock(scale=0.5, now=fake)
    cfg = {"throttle": {"enabled": True, "writes_burst": 2, "writes_per_s": 1}}
    throttle = Throttle(clock, cfg)
    assert throttle.take("s", "p", "write")[:2] == (True, 1)
    assert throttle.take("s", "p", "write")[:2] == (True, 0)
    allowed, _, family, retry = throttle.take("s", "p", "write")
    assert (allowed, family, retry) == (False, "writes", 1)
    fake.t += 0.5  # one service second at scale 0.5
    assert throttle.take("s", "p", "write")[0] is True
    assert throttle.take("s", "other", "write")[0] is True


def test_ids_parts_and_ancestry() -> None:
    rid = "/subscriptions/S/resourcegroups/RG/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg1/databases/d"
    p = ids.parts(rid)
    assert p == {
        "subscription": "S",
        "resource_group": "RG",
        "namespace": "Microsoft.DBforPostgreSQL",
        "type": "Microsoft.DBforPostgreSQL/flexibleServers/databases",
        "name": "d",
    }
    assert ids.is_ancestor_or_self("/subscriptions/s/resourceGroups/rg", rid)
    assert not ids.is_ancestor_or_self("/subscriptions/s/resourceGroups/r", rid)


def test_route_templates_are_case_insensitive() -> None:
    pattern = compile_template("/subscriptions/{sub}/resourceGroups/{rg}")
    m = pattern.match("/SUBSCRIPTIONS/x/resourcegroups/Y/")
    assert m is not None and m.groupdict() == {"sub": "x", "rg": "Y"}
    assert compile_template("{scope:.*}/providers/A/b").match("/subscriptions/x/providers/A/b")


def test_tokens_verify_and_reject_tampering() -> None:
    issuer = TokenIssuer(b"k" * 32, "tenant")
    token, exp = issuer.mint(
        principal_id="p", app_id="a", audience="https://management.azure.com", lifetime_s=60, now=100
    )
    assert issuer.verify(token, now=120)["oid"] == "p"
    with pytest.raises(TokenError) as expired:
        issuer.verify(token, now=exp + 1)
    assert expired.value.expired
    header, body, sig = token.split(".")
    with pytest.raises(TokenError):
        issuer.verify(f"{header}.{body}x.{sig}", now=120)
    with pytest.raises(TokenError):
        TokenIssuer(b"other" * 8, "tenant").verify(token, now=120)


def test_operation_ids_are_base64_with_padding_and_path_safe() -> None:
    for _ in range(50):
        op = new_operation_id()
        assert op.endswith("=") and "/" not in op and "+" not in op


def test_state_indexes_snapshot_and_scheduler_roundtrip() -> None:
    fake = FakeTime()
    clock = Clock(scale=1.0, now=fake)
    state = State()
    state.put("servers", "a", {"id": "A"}, [("by_rg", "rg1")])
    state.put("servers", "b", {"id": "B"}, [("by_rg", "rg1")])
    ops = Operations(state, clock, lambda: "InProgress")
    done: list[str] = []

    def complete(op: dict[str, object]) -> None:
        done.append(str(op["id"]))
        ops.finish(op, "Succeeded")

    ops.on_complete("k", complete)
    op = ops.create("k", 10)
    copy = State()
    copy.load(state.dump())
    assert list(copy.members("by_rg", "rg1")) == ["a", "b"]
    assert copy.pending_transitions() == 1
    state.delete("servers", "a")
    assert list(state.members("by_rg", "rg1")) == ["b"]
    assert ops.tick() == 0
    fake.t += 10
    assert ops.tick() == 1
    assert done == [op["id"]] and ops.get(op["id"])["status"] == "Succeeded"  # type: ignore[index]
    fake.t += 100
    assert ops.prune(50) == 1
