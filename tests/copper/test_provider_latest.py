"""Copper Labs latest values: exact units, encoded ids, paged bulk, refused jumps."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
import logging

import pytest

from custom_components.cloud_energy_meters.providers.copper import (
    CCF_M3,
    GALLON_M3,
    CopperProvider,
)
from custom_components.cloud_energy_meters.providers.model import Channel
from tests.provider_factory import collect
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.copper import (
    ENTERPRISE_ID,
    HOME_ELECTRIC_ID,
    HOME_GAS_ID,
    HOME_PREMISE_ID,
    HOME_WATER_ID,
)


def m3(value: float, factor: Decimal) -> float:
    """Convert exactly, as the document's factors say."""
    return float(Decimal(str(value)) * factor)


def test_the_factors_are_exact() -> None:
    """1 CCF = 100 ft³ = 2.8316846592 m³; 1 US gal = 231 in³ = 0.003785411784 m³."""
    inch = Decimal("0.0254")
    assert 100 * (12 * inch) ** 3 == CCF_M3
    assert 231 * inch**3 == GALLON_M3


async def read_hours(
    provider: CopperProvider, channels: Iterable[Channel], end: datetime
) -> None:
    """Read each meter's last hours as its history import does (one request each)."""
    for channel in channels:
        if channel.history:
            await collect(provider, channel, end - timedelta(hours=3), end)


async def home_channels(app: CopperProvider) -> dict[str, Channel]:
    """Discover Home; return its channels by `<meter>:<what>`."""
    inventory = await app.async_discover([HOME_PREMISE_ID])
    return {c.key.removeprefix(f"{HOME_PREMISE_ID}:"): c for c in inventory.channels}


async def test_app_latest_values_in_exact_units(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Instant rates, registers and last hours equal the ground truth, converted.

    The usage values come with the meters' history reads, at no extra request.
    """
    channels = await home_channels(app)
    await read_hours(app, channels.values(), sim_clock())
    simulator.clear_log()
    latest = await app.async_latest(list(channels.values()))
    assert not latest.gone
    values = {key: latest.readings[c.key] for key, c in channels.items()}
    cloud = simulator.copper
    factors = {
        HOME_ELECTRIC_ID: Decimal(1),
        HOME_GAS_ID: CCF_M3,
        HOME_WATER_ID: GALLON_M3,
    }
    for meter, factor in factors.items():
        at, rate = cloud.truth_instant(meter)
        assert values[f"{meter}:rate"].value == m3(rate, factor)
        assert values[f"{meter}:rate"].time == at
        register = values[f"{meter}:register"]
        assert register.time is not None
        assert register.value == m3(cloud.truth_register(meter, register.time), factor)
        hour = values[f"{meter}:hour"]
        assert hour.start is not None and hour.time == hour.start + timedelta(hours=1)
        assert hour.value == m3(cloud.truth_usage(meter, hour.start, hour.time), factor)
    # One instant per premise: what refresh_cost says.
    assert (
        len(simulator.log_for("copper"))
        == 1
        == app.refresh_cost(list(channels.values()))
    )


async def test_usage_values_wait_for_the_history_read(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Before a meter's history is read its usage values are absent, not asked."""
    channels = await home_channels(app)
    usage = [c for c in channels.values() if c.ref[0] == "usage"]
    simulator.clear_log()
    latest = await app.async_latest(usage)
    assert latest.readings == {}
    assert simulator.log_for("copper") == []
    assert app.refresh_cost(usage) == 0


async def test_meter_ids_reach_the_server_percent_encoded(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """The simulator answers 404 to a raw `:`: every meter was read."""
    assert simulator.copper.require_encoded_ids
    channels = await home_channels(app)
    usage = [c for c in channels.values() if c.ref[0] == "usage"]
    simulator.clear_log()
    await read_hours(app, usage, sim_clock())
    assert [r.status for r in simulator.log_for("copper")] == [200, 200, 200]
    latest = await app.async_latest(usage)
    assert len(latest.readings) == len(usage)
    assert not latest.gone


async def test_a_register_jump_is_refused_and_logged_once(
    app: CopperProvider,
    simulator: Simulator,
    sim_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A x100 register never reaches a reading; the other values still do."""
    channels = await home_channels(app)
    register = channels[f"{HOME_GAS_ID}:register"]
    now = sim_clock()
    await read_hours(app, channels.values(), now)
    first = await app.async_latest([register])
    assert register.key in first.readings
    simulator.copper.register_jump(
        HOME_GAS_ID, now - timedelta(hours=5), now + timedelta(hours=1)
    )
    app.cache.clear()  # a quarter of an hour later: the answers are stale
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await read_hours(app, channels.values(), now)
        latest = await app.async_latest(list(channels.values()))
    assert register.key not in latest.readings
    assert channels[f"{HOME_GAS_ID}:hour"].key in latest.readings
    assert channels[f"{HOME_WATER_ID}:register"].key in latest.readings
    lines = [
        r.getMessage() for r in caplog.records if "register jump" in r.getMessage()
    ]
    assert len(lines) == 1


async def test_enterprise_bulk_walks_next_links(
    enterprise: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Every recently heard meter's register, over pages linked by `next`."""
    premises = [p.id for p in simulator.copper.premises_of_enterprise(ENTERPRISE_ID)]
    inventory = await enterprise.async_discover(premises)
    registers = [c for c in inventory.channels if c.ref[0] == "bulk"]
    # Before a meter's history read nothing vouches for its register: none shown.
    assert (await enterprise.async_latest(registers)).readings == {}
    # Every fourth meter's history (the hourly budget holds a quarter of them).
    read = [c for c in inventory.channels if c.history][::4]
    await read_hours(enterprise, read, sim_clock())
    enterprise.cache.clear()  # a quarter of an hour later: the bulk pages are stale
    simulator.clear_log()
    latest = await enterprise.async_latest(registers)
    bulk = [r for r in simulator.log_for("copper") if r.path.endswith("/bulk")]
    assert len(bulk) == 3  # 229 meters, 100 a page
    heard = {
        m.id
        for m in simulator.copper.meters_of_enterprise(ENTERPRISE_ID)
        if m.silent_from is None
    }
    assert {c.ref[2] for c in registers if c.key in latest.readings} == heard & {
        c.ref[2] for c in read
    }
    for channel in registers:
        reading = latest.readings.get(channel.key)
        if reading is None:
            continue
        assert reading.time is not None
        factor = {"electric": Decimal(1), "gas": CCF_M3, "water": GALLON_M3}[
            channel.ref[3]
        ]
        truth = simulator.copper.truth_register(channel.ref[2], reading.time)
        assert reading.value == m3(truth, factor)


async def test_enterprise_rates_hours_and_grid(
    enterprise: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Rates and hours from each meter's history read; the grid in one request."""
    first = simulator.copper.premises_of_enterprise(ENTERPRISE_ID)[0]
    inventory = await enterprise.async_discover([first.id])
    wanted = [c for c in inventory.channels if c.ref[0] in ("usage", "grid")]
    await read_hours(enterprise, wanted, sim_clock())
    simulator.clear_log()
    latest = await enterprise.async_latest(wanted)
    assert len(simulator.log_for("copper")) == enterprise.refresh_cost(wanted) == 1
    assert len(latest.readings) == len(wanted)
    voltage = next(v for k, v in latest.readings.items() if k.endswith(":voltage"))
    assert 230 <= float(voltage.value) <= 250
    gas = next(m for m in first.meters if m.kind == "gas")
    hour = latest.readings[f"{first.id}:{gas.id}:hour"]
    assert hour.start is not None and hour.time is not None
    truth = simulator.copper.truth_usage(gas.id, hour.start, hour.time)
    assert hour.value == m3(truth, CCF_M3)
    rate = latest.readings[f"{first.id}:{gas.id}:rate"]
    assert rate.value == m3(truth, CCF_M3)  # an hour's amount per hour


async def test_a_premise_the_user_lost_is_gone(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Its channels are reported gone; the others still read."""
    channels = await home_channels(app)
    instant = [c for c in channels.values() if c.ref[0] == "instant"]
    simulator.copper.user_premises["demo@copper.example"] = ()
    latest = await app.async_latest(instant)
    assert latest.gone == {c.key for c in instant}


async def test_a_register_older_than_the_one_shown_is_not_used(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """The x100 covers the register read last: none is read rather than an older one.

    Shown after the newer one, an older register would make the meter go back.
    """
    channels = await home_channels(app)
    register = channels[f"{HOME_GAS_ID}:register"]
    await read_hours(app, [channels[f"{HOME_GAS_ID}:hour"]], sim_clock())
    first = (await app.async_latest([register])).readings[register.key]
    assert first.time is not None
    simulator.copper.register_jump(
        HOME_GAS_ID, first.time, sim_clock() + timedelta(hours=3)
    )
    app.cache.clear()  # a quarter of an hour later: the answers are stale
    await read_hours(app, [channels[f"{HOME_GAS_ID}:hour"]], sim_clock())
    # The rows before it are still true: the one read before is not.
    latest = await app.async_latest([register])
    assert register.key not in latest.readings


async def test_a_register_jump_served_from_the_start_is_refused(
    app: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """No register seen before (a restart during the glitch): the usage disowns it.

    Two registers an hour apart differ by a hundred times the hour's usage: neither
    is used; once the glitch is over the register is read again, and it is true.
    """
    channels = await home_channels(app)
    register = channels[f"{HOME_GAS_ID}:register"]
    now = sim_clock()
    simulator.copper.register_jump(
        HOME_GAS_ID, now - timedelta(hours=6), now + timedelta(hours=1)
    )
    await read_hours(app, channels.values(), now)
    latest = await app.async_latest(list(channels.values()))
    assert register.key not in latest.readings
    assert channels[f"{HOME_GAS_ID}:hour"].key in latest.readings
    assert channels[f"{HOME_WATER_ID}:register"].key in latest.readings

    simulator.copper.clear_jumps()
    app.cache.clear()
    await read_hours(app, channels.values(), now)
    reading = (await app.async_latest([register])).readings[register.key]
    assert reading.time is not None
    truth = simulator.copper.truth_register(HOME_GAS_ID, reading.time)
    assert reading.value == m3(truth, CCF_M3)


async def test_an_enterprise_register_x100_from_the_start_is_refused(
    enterprise: CopperProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """The bulk register is measured against the one the usage rows vouch for."""
    first = simulator.copper.premises_of_enterprise(ENTERPRISE_ID)[0]
    inventory = await enterprise.async_discover([first.id])
    gas = next(m for m in first.meters if m.kind == "gas")
    now = sim_clock()
    simulator.copper.register_jump(
        gas.id, now - timedelta(hours=6), now + timedelta(hours=1)
    )
    await read_hours(enterprise, inventory.channels, now)
    registers = [c for c in inventory.channels if c.ref[0] == "bulk"]
    latest = await enterprise.async_latest(registers)
    assert f"{first.id}:{gas.id}:register" not in latest.readings
    water = next(m for m in first.meters if m.kind == "water")
    assert f"{first.id}:{water.id}:register" in latest.readings
