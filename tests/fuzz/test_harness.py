"""The fuzz harness itself, so a green fuzz run means something.

The oracle refuses what it must, the server mutates only its target, and the judge
tells crashes, hangs and amplification apart.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
import math

import pytest

from custom_components.cloud_energy_meters.providers.errors import RateLimited
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Interval,
    Kind,
    Latest,
    Quantity,
    Reading,
    Site,
)

from . import contract
from .endpoints import Context, Endpoint, find
from .harness import running
from .mutations import Answer, CsvEdit, JsonEdit, Mutation, SetStatus

pytestmark = pytest.mark.fuzz

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
AMOUNT = Channel(
    key="s:m:total",
    site_id="s",
    name="Meter",
    label=None,
    quantity=Quantity.ENERGY,
    kind=Kind.INTERVAL,
    unit="kWh",
)
POWER = replace(AMOUNT, key="s:m:power", kind=Kind.INSTANT, quantity=Quantity.POWER)


def _rule(check: object, *args: object) -> str:
    with pytest.raises(contract.ContractViolation) as caught:
        check(*args)  # type: ignore[operator]
    return caught.value.rule


def test_oracle_refuses_bad_history() -> None:
    """NaN, negative, unsorted, duplicate and overlapping intervals are refused."""
    good = [Interval(T0, T0 + Q, 1.0), Interval(T0 + Q, T0 + 2 * Q, 0.0)]
    contract.check_history([good[:1], good[1:]], AMOUNT, T0, T0 + 4 * Q)
    cases = {
        "interval value is not finite": [[Interval(T0, T0 + Q, math.nan)]],
        "negative amount in history": [[Interval(T0, T0 + Q, -0.1)]],
        "intervals out of time order": [good[1:], good[:1]],
        "duplicate interval start": [[good[0], good[0]]],
        "overlapping intervals": [[Interval(T0, T0 + 2 * Q, 1), good[1]]],
        "interval outside the span asked": [[Interval(T0 - Q, T0, 1.0)]],
        "interval start is not aware UTC": [
            [Interval(T0.replace(tzinfo=None), T0 + Q, 1.0)]
        ],
    }
    for rule, batches in cases.items():
        assert _rule(contract.check_history, batches, AMOUNT, T0, T0 + 4 * Q) == rule


def test_oracle_refuses_bad_latest() -> None:
    """A negative amount, NaN, a stranger's key; a negative power is fine."""
    contract.check_latest(
        Latest(readings={"s:m:power": Reading(-5.0, T0)}), [AMOUNT, POWER]
    )
    assert (
        _rule(
            contract.check_latest,
            Latest(readings={"s:m:total": Reading(-0.5, T0 + Q, T0)}),
            [AMOUNT],
        )
        == "negative amount in latest"
    )
    assert (
        _rule(
            contract.check_latest,
            Latest(readings={"s:m:power": Reading(math.inf)}),
            [POWER],
        )
        == "reading value is not finite"
    )
    assert (
        _rule(
            contract.check_latest, Latest(readings={}, gone=frozenset({"x"})), [POWER]
        )
        == "gone names a channel not asked for"
    )


def test_oracle_refuses_duplicates_and_waits() -> None:
    """Duplicate site ids, and a Retry-After of forever or over an hour."""
    site = Site(id="1", name="One")
    assert _rule(contract.check_sites, (site, site)) == "duplicate site id"
    contract.check_rate_limited(RateLimited("slow down", 60.0))
    assert (
        _rule(contract.check_rate_limited, RateLimited("x", math.inf))
        == "Retry-After not finite"
    )
    assert (
        _rule(contract.check_rate_limited, RateLimited("x", 3601.0))
        == "Retry-After over an hour"
    )


def test_mutations_land_in_the_document() -> None:
    """Paths are taken modulo each container; CSV edits address rows."""
    answer = Answer(200, {}, json.dumps([{"a": 1, "b": 2}, {"a": 3}]).encode())
    Mutation(
        (JsonEdit("set", (2, 1), math.nan), JsonEdit("repeat", (1,), None, 2))
    ).apply(answer)
    assert answer.body == b'[{"a": 1, "b": NaN}, {"a": 3}, {"a": 3}, {"a": 3}]'
    assert answer.notes == ["set $[0].b nan", "repeat $[1] x2"]
    csv = Answer(200, {}, b"1,10,1.0\n1,20,2.0\n")
    Mutation((CsvEdit("set", 3, 2, "nan"), CsvEdit("reverse"))).apply(csv)
    assert csv.body == b"1,20,nan\n1,10,1.0\n"


@pytest.mark.usefixtures("loopback")
def test_server_mutates_only_its_target_and_counts() -> None:
    """A 503 on the site list fails the call cleanly; the sign-in passed unchanged."""
    endpoint = find("climkit", "all_installations")
    with running(["climkit"]) as (runner, harness):
        outcome = harness.run_in(runner, "climkit")(
            endpoint, Mutation((SetStatus(503),))
        )
    assert (outcome.kind, outcome.failure) == ("error", "CannotConnect")
    assert outcome.requests == 2  # /auth (unchanged), /all_installations (503)
    assert "=> 503" in outcome.payload


@pytest.mark.usefixtures("loopback")
def test_judge_tells_crash_hang_and_amplification_apart() -> None:
    """Another exception is a crash, a slow call a hang, too many requests a violation."""

    async def crash(ctx: Context) -> None:
        raise ValueError("boom")

    async def hang(ctx: Context) -> None:
        await asyncio.sleep(5)

    async def many(ctx: Context) -> object:
        for _ in range(12):
            await ctx.provider.async_list_sites()
        return ()

    def no_check(result: object, ctx: Context) -> None:
        """Accept anything."""

    mutation = Mutation((SetStatus(200),))
    with running(["climkit"]) as (runner, harness):
        harness.hang_seconds = 0.2
        for name in ("crash", "hang", "many"):  # no normal run: a bound of 10
            harness.baselines["climkit", name] = 0
        run = harness.run_in(runner, "climkit")
        crashed = run(Endpoint("crash", "/none$", crash, no_check), mutation)
        hung = run(Endpoint("hang", "/none$", hang, no_check), mutation)
        amplified = run(Endpoint("many", "/none$", many, no_check), mutation)
    assert crashed.kind == "crash"
    assert crashed.failure.startswith("ValueError at test_harness.py:")
    assert hung.kind == "hang"
    assert (amplified.kind, amplified.failure) == ("violation", "request amplification")
    assert amplified.requests == 13  # one sign-in, twelve site lists


@pytest.mark.usefixtures("loopback")
def test_a_cloud_sets_its_simulator_knobs_for_its_calls_only() -> None:
    """flexmeasures_paged's calls get paged assets; flexmeasures', in the same run, a list."""
    unchanged = Mutation((SetStatus(200),))
    clouds = ["flexmeasures_paged", "flexmeasures", "flexmeasures_paged"]
    shapes = []
    with running(clouds[:2]) as (runner, harness):
        for cloud in clouds:
            outcome = harness.run_in(runner, cloud)(find(cloud, "assets"), unchanged)
            assert outcome.kind == "ok", outcome
            # The payload shows the answer's first bytes: `{ "data": …` or `[ {…`.
            head = outcome.payload.partition(" B b'")[2].replace("\\n", "")
            shapes.append("paged" if head.startswith('{  "data"') else head[:1])
        assert harness.simulator.flexmeasures.always_paged_assets  # set by the last
    assert shapes == ["paged", "[", "paged"]
