"""Climkit latest values against the simulator's ground truth at a frozen instant."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.errors import RequestRejected
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Kind,
    Reading,
    Role,
)
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_FERME, SITE_LAC, SITES
from tests.simulator.clock import FakeClock

QUARTER = timedelta(minutes=15)
REGISTER_FIELDS = {
    "import_register": "en_im",
    "export_register": "en_ex",
    "heat_register": "heat_energy_kwh",
    "volume_register": "vol_m3",
}
SITE_FIELDS = {
    Role.CONSUMPTION: "conso_total",
    Role.GRID_IMPORT: "from_ext",
    Role.PRODUCTION: "prod_total",
    Role.SELF_CONSUMPTION: "self",
    Role.GRID_EXPORT: "to_ext",
    Role.BATTERY_CHARGE: "storage_charging_total",
    Role.BATTERY_DISCHARGE: "storage_discharging_total",
}


def floor_quarter(moment: datetime) -> datetime:
    """Return the last 15-minute boundary at or before `moment`."""
    return moment.replace(
        minute=moment.minute - moment.minute % 15, second=0, microsecond=0
    )


def expected_reading(sim: Simulator, channel: Channel, now: datetime) -> Reading | None:
    """Return what the simulator's ground truth says the channel's latest value is."""
    site = channel.site_id
    if channel.kind is Kind.INSTANT:
        assert channel.source_id is not None
        at, value = sim.climkit.truth_sensor_latest(site, channel.source_id, now)
        return Reading(value=value, time=at)
    if channel.kind is Kind.REGISTER:
        assert channel.source_id is not None
        field = REGISTER_FIELDS[channel.label]
        register = sim.climkit.truth_register(site, channel.source_id, field, now)
        if register is None:
            return None
        # The row's end: a gappy meter's last row may be hours old.
        at = sim.climkit.truth_register_time(site, channel.source_id, now)
        return Reading(value=register, time=at)
    if channel.source_id is not None:  # a meter's interval amounts
        field = {"interval_self": "self", "interval_ext": "ext"}.get(
            channel.label, "total"
        )
        rows = sim.climkit.truth_meter_intervals(
            site, channel.source_id, now - timedelta(hours=24), now
        )
        start, values = rows[-1]
        return Reading(value=values[field], time=start + QUARTER, start=start)
    # A site total: the truth of its last interval.
    meter_type = channel.key.split(":")[2]
    last = floor_quarter(now) - QUARTER
    hourly = sim.climkit.truth_site_hourly(
        site, meter_type, SITE_FIELDS[channel.role], last, last + QUARTER
    )
    if not hourly:
        return None
    (value,) = hourly.values()
    return Reading(value=value, time=last + QUARTER, start=last)


async def test_latest_equals_truth(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """Every channel gets a Reading equal to the truth; cost = requests actually sent.

    Registers read the last raw row, amounts the last 15-minute interval (start and
    end), sensors their last point: site 1 sends seconds, site 2 milliseconds.
    """
    inventory = await climkit.async_discover([site.id for site in SITES])
    simulator.clear_log()
    readings = (await climkit.async_latest(inventory.channels)).readings
    sent = simulator.log_for("climkit")
    assert len(sent) == climkit.refresh_cost(inventory.channels)
    assert all(r.status == 200 and r.path != "/auth" for r in sent)
    # One request per meter (amounts), per physical meter (registers), per site
    # metering type and per sensor.
    meters = sum(len(site.meters) for site in SITES)
    physical = sum(1 for site in SITES for m in site.meters if not m.is_rule_meter)
    types = sum(len({m.type for m in site.meters}) for site in SITES)
    sensors = sum(len(site.sensors) for site in SITES)
    assert len(sent) == meters + physical + types + sensors

    now = sim_clock()
    expected = {
        channel.key: reading
        for channel in inventory.channels
        if (reading := expected_reading(simulator, channel, now)) is not None
    }
    assert set(expected) == {channel.key for channel in inventory.channels}
    assert readings == expected
    for reading in readings.values():
        assert reading.time is not None
        assert reading.time.utcoffset() == timedelta(0)
        assert reading.time <= now


async def test_sensor_timestamps_seconds_and_milliseconds(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """Sensor points in seconds (site 1) and milliseconds (site 2) are the same instant."""
    inventory = await climkit.async_discover([SITE_LAC.id, SITE_CENTRALE.id])
    sensors = [c for c in inventory.channels if c.kind is Kind.INSTANT]
    readings = (await climkit.async_latest(sensors)).readings
    lac = readings[f"{SITE_LAC.id}:sensor:{SITE_LAC.sensors[0].id}"]
    centrale = readings[f"{SITE_CENTRALE.id}:sensor:{SITE_CENTRALE.sensors[0].id}"]
    assert lac.time == centrale.time == floor_quarter(sim_clock())


async def test_refresh_cost_of_a_subset(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Channels sharing a request cost one: a meter's total, self and ext together."""
    inventory = await climkit.async_discover([SITE_LAC.id])
    apartment = SITE_LAC.meters[2].id
    chosen = [c for c in inventory.channels if c.source_id == apartment]
    assert {c.kind for c in chosen} == {Kind.INTERVAL, Kind.REGISTER}
    simulator.clear_log()
    readings = (await climkit.async_latest(chosen)).readings
    assert climkit.refresh_cost(chosen) == 2 == len(simulator.log_for("climkit"))
    assert set(readings) == {c.key for c in chosen}
    assert (await climkit.async_latest([])).readings == {}
    assert climkit.refresh_cost([]) == 0


async def test_no_data_means_no_reading(
    simulator: Simulator, sim_clock: FakeClock, climkit: ClimkitProvider
) -> None:
    """Channels whose data is not published have no Reading at all (never 0)."""
    inventory = await climkit.async_discover([SITE_FERME.id, SITE_LAC.id])
    now = sim_clock()
    simulator.climkit.publish_late(
        now - timedelta(days=2), now + QUARTER, SITE_FERME.id
    )
    readings = (await climkit.async_latest(inventory.channels)).readings
    ferme = {c.key for c in inventory.channels if c.site_id == SITE_FERME.id}
    lac = {c.key for c in inventory.channels if c.site_id == SITE_LAC.id}
    assert ferme
    assert not ferme & set(readings)
    assert set(readings) == lac


async def test_a_vanished_meter_and_sensor_do_not_fail_the_rest(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """A meter or sensor the cloud no longer knows is reported gone; others are read."""
    inventory = await climkit.async_discover([SITE_LAC.id])
    meter, sensor = SITE_LAC.meters[2], SITE_LAC.sensors[0]
    simulator.climkit.sites[0] = replace(
        SITE_LAC,
        meters=tuple(m for m in SITE_LAC.meters if m is not meter),
        sensors=tuple(s for s in SITE_LAC.sensors if s is not sensor),
    )
    latest = await climkit.async_latest(inventory.channels)
    vanished = {
        c.key for c in inventory.channels if c.source_id in (meter.id, sensor.id)
    }
    assert vanished
    assert latest.gone == vanished
    assert set(latest.readings) == {c.key for c in inventory.channels} - vanished


async def test_other_refusals_still_fail_the_read(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Only "not found" is taken for gone: another refusal fails the whole read."""
    inventory = await climkit.async_discover([SITE_FERME.id])
    simulator.climkit.max_span = timedelta(hours=1)  # latest asks a day: 400
    with pytest.raises(RequestRejected) as caught:
        await climkit.async_latest(inventory.channels)
    assert caught.value.status == 400
