"""Locus Energy latest values against the simulator's ground truth.

Measured component fields come from one `gran=latest` call per component, site
fields and modeled fields from a recent 15-minute window (sites have no
`latest`; modeled fields need their field parameters). Energy arrives in Wh per
interval and must become kWh exactly. A component or site the cloud no longer
knows is reported gone while the others are read.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from custom_components.cloud_energy_meters.providers.locus import (
    RECENT_WINDOW,
    LocusProvider,
)
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Inventory,
    Kind,
    Latest,
    Quantity,
    Reading,
)
from tests.simulator import Simulator, locus as locus_sim
from tests.simulator.clock import FakeClock
from tests.simulator.locus import (
    HARBOR_SITE_ID,
    MAPLE_INVERTER_ID,
    MAPLE_NET_METER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
)

QUARTER = timedelta(minutes=15)
SITE_IDS = [str(MAPLE_SITE_ID), str(HARBOR_SITE_ID)]


def kwh(wh: float) -> float:
    """Convert a published Wh value to kWh exactly (decimal, no float dust)."""
    return float(Decimal(repr(wh)) / 1000)


def truth_of_quarter(
    simulator: Simulator, channel: Channel, start: datetime
) -> float | None:
    """Return the simulator's value of a channel's field in one 15-minute interval."""
    scope, ident, _, short = channel.ref[:4]
    hours = simulator.locus.truth_hourly(
        int(ident),
        short,
        start,
        start + QUARTER,
        kind="site" if scope == "site" else "component",
    )
    return next(iter(hours.values()), None)


def newest_truth(
    simulator: Simulator, channel: Channel, now: datetime
) -> tuple[datetime, float] | None:
    """Return the newest (interval start, value) of a field within the recent window."""
    start = datetime.fromtimestamp(
        now.timestamp() // QUARTER.total_seconds() * QUARTER.total_seconds(), UTC
    )
    while start >= now - RECENT_WINDOW:
        if (value := truth_of_quarter(simulator, channel, start)) is not None:
            return start, value
        start -= QUARTER
    return None


def assert_reading(
    channel: Channel, reading: Reading, start: datetime, value: float
) -> None:
    """Compare a reading with the truth: energy in kWh over its interval, else as is."""
    if channel.quantity is Quantity.ENERGY:
        assert reading == Reading(value=kwh(value), time=start + QUARTER, start=start)
    else:
        assert reading == Reading(value=value, time=start)


@pytest.fixture
async def inventory(
    simulator: Simulator, sim_clock: FakeClock, locus: LocusProvider
) -> Inventory:
    """Discover the two small sites with the cloud's clock frozen now; clear the log."""
    found = await locus.async_discover(SITE_IDS)
    simulator.clear_log()
    return found


async def test_components_equal_truth_latest(
    simulator: Simulator, inventory: Inventory, locus: LocusProvider
) -> None:
    """`gran=latest` readings are the cloud's latest interval, Wh as exact kWh.

    A field missing from the latest point (power factor at night) has no
    reading rather than a zero: its own last value is older than the point.
    """
    latest = await locus.async_latest(inventory.channels)
    measured = [c for c in inventory.channels if c.ref[2:3] == ("latest",)]
    assert measured
    newest: dict[str, datetime] = {}
    for channel in measured:
        truth = simulator.locus.truth_latest(int(channel.ref[1]), channel.ref[3])
        assert truth is not None
        reading = latest.readings.get(channel.key)
        if reading is None:
            continue
        assert_reading(channel, reading, *truth)
        newest[channel.ref[1]] = max(truth[0], newest.get(channel.ref[1], truth[0]))
    for channel in measured:
        if channel.key not in latest.readings:
            truth = simulator.locus.truth_latest(int(channel.ref[1]), channel.ref[3])
            assert truth is not None
            assert truth[0] < newest[channel.ref[1]], channel.key
    for channel in measured:  # power and energy are always there (0 at night)
        if channel.ref[3] in ("W_avg", "Wh_sum"):
            assert channel.key in latest.readings
    for record in simulator.log_for("locus"):
        if record.query.get("gran") == "latest":
            assert set(record.query) == {"fields", "tz", "gran"}
            assert record.query["tz"] == "UTC"


async def test_energy_is_converted_exactly(
    simulator: Simulator, inventory: Inventory, locus: LocusProvider
) -> None:
    """1252.4 Wh in the latest interval reads 1.2524 kWh, not 1.2524000000000002."""
    truth = simulator.locus.truth_latest(MAPLE_PV_METER_ID, "Wh_sum")
    assert truth is not None
    simulator.locus.correct(MAPLE_PV_METER_ID, truth[0], 1252.4)
    key = f"{MAPLE_SITE_ID}:component:{MAPLE_PV_METER_ID}:Wh_sum"
    channels = [c for c in inventory.channels if c.key == key]
    latest = await locus.async_latest(channels)
    assert latest.readings[key].value == 1.2524
    assert latest.readings[key].start == truth[0]


async def test_sites_and_modeled_fields_from_a_recent_window(
    simulator: Simulator,
    sim_clock: FakeClock,
    inventory: Inventory,
    locus: LocusProvider,
) -> None:
    """Site fields and modeled fields are the newest values of a recent 15-minute window.

    Modeled fields are asked with their field parameters, the window ends now
    and reaches back RECENT_WINDOW, in naive UTC with tz=UTC. A field without a
    value in the window has no reading.
    """
    before = datetime.now(UTC)
    latest = await locus.async_latest(inventory.channels)
    after = datetime.now(UTC)
    windowed = [c for c in inventory.channels if c.ref[2:3] == ("15min",)]
    assert {c.ref[0] for c in windowed} == {"site", "component"}
    compared = 0
    for channel in windowed:
        truth = newest_truth(simulator, channel, sim_clock())
        if truth is None:  # e.g. Harbor's meter silent for hours: nothing to show
            assert channel.key not in latest.readings
            continue
        assert_reading(channel, latest.readings[channel.key], *truth)
        compared += 1
    assert compared >= 6  # Maple's site and inverter always have recent values
    requests = [r for r in simulator.log_for("locus") if r.query.get("gran") == "15min"]
    assert len(requests) == 4  # two sites, two inverters
    for record in requests:
        assert record.query["tz"] == "UTC"
        assert (
            record.query["modelType"],
            record.query["irradianceSource"],
            record.query["inverterClipping"],
        ) == ("simple", "weatherStation", "true")
        start = datetime.fromisoformat(record.query["start"]).replace(tzinfo=UTC)
        end = datetime.fromisoformat(record.query["end"]).replace(tzinfo=UTC)
        assert end - start == RECENT_WINDOW
        assert before - timedelta(seconds=1) <= end <= after


async def test_refresh_cost_is_what_a_refresh_sends(
    simulator: Simulator, inventory: Inventory, locus: LocusProvider
) -> None:
    """refresh_cost counts one request per component/site read plus one per site's alerts.

    Facts are known from discovery and cost nothing.
    """
    for sites in ([], SITE_IDS):
        simulator.clear_log()
        await locus.async_latest(inventory.channels, sites)
        assert locus.refresh_cost(inventory.channels, sites) == len(
            simulator.log_for("locus")
        )
    facts = [c for c in inventory.channels if c.kind is Kind.FACT]
    assert facts
    simulator.clear_log()
    assert await locus.async_latest(facts) == Latest(readings={})
    assert simulator.log_for("locus") == []
    assert locus.refresh_cost(facts) == 0


async def test_unknown_component_is_gone(
    simulator: Simulator,
    inventory: Inventory,
    locus: LocusProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A component the cloud no longer knows (404) is gone; the others are read."""
    monkeypatch.delitem(locus_sim._COMPONENT_BY_ID, MAPLE_NET_METER_ID)
    latest = await locus.async_latest(inventory.channels, SITE_IDS)
    net = {
        c.key
        for c in inventory.channels
        if c.device_id == f"component-{MAPLE_NET_METER_ID}"
    }
    assert net
    assert latest.gone == net
    assert not net & set(latest.readings)
    read = {c.ref[:3] for c in inventory.channels if c.key in latest.readings}
    wanted = {c.ref[:3] for c in inventory.channels if c.kind is not Kind.FACT}
    assert wanted - read == {("component", str(MAPLE_NET_METER_ID), "latest")}
    statuses = [(r.path, r.status) for r in simulator.log_for("locus")]
    assert (f"/components/{MAPLE_NET_METER_ID}/data", 404) in statuses
    assert {alert.site_id for alert in latest.alerts} == set(SITE_IDS)


async def test_unknown_site_is_gone(
    simulator: Simulator,
    inventory: Inventory,
    locus: LocusProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A site the cloud no longer knows: its channels are gone, its alerts skipped.

    The other site is still read, its alerts included: one vanished site must
    not fail the whole refresh.
    """
    for component in simulator.locus.components_of(HARBOR_SITE_ID):
        monkeypatch.delitem(locus_sim._COMPONENT_BY_ID, component.id)
    monkeypatch.delitem(locus_sim._SITE_BY_ID, HARBOR_SITE_ID)
    latest = await locus.async_latest(inventory.channels, SITE_IDS)
    harbor = {
        c.key
        for c in inventory.channels
        if c.site_id == str(HARBOR_SITE_ID) and c.kind is not Kind.FACT
    }
    assert latest.gone == harbor
    assert {c.site_id for c in inventory.channels if c.key in latest.readings} == {
        str(MAPLE_SITE_ID)
    }
    assert latest.alerts
    assert {alert.site_id for alert in latest.alerts} == {str(MAPLE_SITE_ID)}
    assert (f"/sites/{HARBOR_SITE_ID}/alerts", 404) in [
        (r.path, r.status) for r in simulator.log_for("locus")
    ]


async def test_nothing_published_gives_no_reading(
    simulator: Simulator, inventory: Inventory, locus: LocusProvider
) -> None:
    """With the recent intervals withheld, windowed fields have no reading, not 0."""
    now = datetime.now(UTC)
    simulator.locus.publish_late(now - timedelta(hours=3), now + timedelta(hours=1))
    inverter = [
        c
        for c in inventory.channels
        if c.device_id == f"component-{MAPLE_INVERTER_ID}" and c.ref[2] == "15min"
    ]
    assert inverter
    latest = await locus.async_latest(inverter)
    assert latest.readings == {}
    assert latest.gone == frozenset()
