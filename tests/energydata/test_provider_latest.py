"""Energydata.dk latest values against the simulator's ground truth.

Every named datastream is read in ONE `latest=true` request; each reading is the
value the cloud serves (numbers as floats, a string datastream as its string)
at the instant of its timestamp. A datastream without values has no reading.
"""

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.model import Channel, Reading
from tests.provider_factory import EDK_DATASTREAMS, MakeProvider
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock, epoch_ms
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    DEMO_PREFIX,
    GAS_METER_ID,
    MAIN_METER_ID,
    PV_YIELD_ID,
    EnergydataCloud,
    SimDatastream,
)

EMPTY_ID = 80001


def expected(cloud: EnergydataCloud, stream_id: int) -> Reading | None:
    """Return the reading the cloud's latest value should become."""
    truth = cloud.latest(stream_id)
    if truth is None:
        return None
    ts, value = truth
    return Reading(
        value=value if isinstance(value, str) else float(value),
        time=datetime.fromtimestamp(ts / 1000, UTC),
    )


async def channels_of(provider: EnergydataProvider) -> dict[int, Channel]:
    """Discover the provider's datastreams; return their channels by datastream id."""
    inventory = await provider.async_discover([])
    return {int(channel.ref[0]): channel for channel in inventory.channels}


def values_queries(simulator: Simulator) -> list[dict[str, str]]:
    """Return the query of every values request, oldest first."""
    return [
        record.query
        for record in simulator.log_for("energydata")
        if record.path == "/datastreams/values"
    ]


async def test_latest_in_one_request_equals_truth(
    simulator: Simulator,
    sim_clock: FakeClock,
    make_provider: MakeProvider,
) -> None:
    """Seven datastreams (one without values) cost one request; values are the truth.

    65603/65863/70001 are doubles, 70003 an integer, 70002 a string; the added
    datastream 80001 has no reading at all and is simply absent.
    """
    cloud = simulator.energydata
    cloud.add_datastream(
        SimDatastream(EMPTY_ID, "Nothing yet", DEMO_PREFIX, "empty", "double", "kWh")
    )
    provider = make_provider(
        "energydata",
        settings={
            "datastreams": [*EDK_DATASTREAMS, {"id": EMPTY_ID, "quantity": "energy"}]
        },
    )
    channels = await channels_of(provider)
    latest = await provider.async_latest(list(channels.values()))
    queries = values_queries(simulator)
    assert queries == [
        {
            "ids": ",".join(str(i) for i in channels),
            "latest": "true",
        }
    ]
    assert provider.refresh_cost(list(channels.values())) == len(queries)
    assert cloud.latest(EMPTY_ID) is None
    assert channels[EMPTY_ID].key not in latest.readings
    assert latest.gone == frozenset()
    truth = {
        channels[stream_id].key: expected(cloud, stream_id)
        for stream_id in channels
        if stream_id != EMPTY_ID
    }
    assert dict(latest.readings) == truth
    state = latest.readings[channels[BATTERY_STATE_ID].key].value
    assert isinstance(state, str)
    assert state in {"idle", "charging", "discharging", "balancing cells 3,4"} or (
        state.startswith("fault")
    )
    gas = latest.readings[channels[GAS_METER_ID].key].value
    assert gas == float(int(gas))
    assert latest.readings[channels[MAIN_METER_ID].key].time <= sim_clock()


async def test_subset_and_nothing(
    simulator: Simulator, sim_clock: FakeClock, energydata: EnergydataProvider
) -> None:
    """Only the channels asked for are requested; no channel, no request."""
    channels = await channels_of(energydata)
    assert (await energydata.async_latest([])).readings == {}
    assert values_queries(simulator) == []
    wanted = [channels[PV_YIELD_ID], channels[GAS_METER_ID]]
    latest = await energydata.async_latest(wanted)
    assert values_queries(simulator) == [
        {"ids": f"{PV_YIELD_ID},{GAS_METER_ID}", "latest": "true"}
    ]
    assert set(latest.readings) == {c.key for c in wanted}


@pytest.mark.parametrize(
    "text",
    ["balancing cells 3,4", 'fault "E42", retry', "", " padded "],
    ids=["comma", "quotes-and-comma", "empty", "spaces"],
)
async def test_string_values_are_kept_as_written(
    simulator: Simulator,
    sim_clock: FakeClock,
    energydata: EnergydataProvider,
    text: str,
) -> None:
    """A string datastream's value comes back exactly, CSV quoting undone."""
    cloud = simulator.energydata
    stamp = sim_clock() + timedelta(seconds=30)
    cloud.overwrite(BATTERY_STATE_ID, epoch_ms(stamp), text)
    channels = await channels_of(energydata)
    latest = await energydata.async_latest([channels[BATTERY_STATE_ID]])
    reading = latest.readings[channels[BATTERY_STATE_ID].key]
    assert reading == Reading(
        value=text, time=datetime.fromtimestamp(epoch_ms(stamp) / 1000, UTC)
    )
    assert energydata.skipped_rows == 0


async def test_late_readings_and_release(
    simulator: Simulator, sim_clock: FakeClock, energydata: EnergydataProvider
) -> None:
    """While the newest readings are late, latest is the newest one served; then the new.

    The provider reports exactly what the cloud serves at each moment: an older
    reading while the last ten minutes are withheld, the newest after release.
    """
    cloud = simulator.energydata
    channels = await channels_of(energydata)
    main = channels[MAIN_METER_ID]
    now = sim_clock()
    newest = expected(cloud, MAIN_METER_ID)
    cloud.late(MAIN_METER_ID, now - timedelta(minutes=10), now + timedelta(minutes=1))
    withheld = (await energydata.async_latest([main])).readings[main.key]
    assert withheld == expected(cloud, MAIN_METER_ID)
    assert newest is not None
    assert withheld.time is not None
    assert withheld.time < now - timedelta(minutes=10) <= newest.time  # type: ignore[operator]
    cloud.release_late()
    released = (await energydata.async_latest([main])).readings[main.key]
    assert released == newest
