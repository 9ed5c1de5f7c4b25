"""Energydata.dk in Home Assistant: datastreams, one request per refresh, statistics."""

from datetime import UTC, datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import DOMAIN
from custom_components.cloud_energy_meters.providers import (
    energydata as energydata_module,
)
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from tests.conftest import EDK_STREAMS, SetupEntry, energydata_entry_for
from tests.helpers import (
    assert_matches_truth,
    assert_matches_truth_until_now,
    energydata_truth,
    recorder_queue_held,
    stored,
)
from tests.simulator import Simulator

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


def statistic_id(entry: MockConfigEntry, stream: int) -> str:
    """Return a datastream's statistic id (the account part is the entry's own id)."""
    account = entry.unique_id.removeprefix("energydata_")  # type: ignore[union-attr]
    word = {"energy": "energy", "water": "volume", "gas": "gas"}[
        EDK_STREAMS[stream]["quantity"]
    ]
    return f"{DOMAIN}:energydata_{account}_{stream}_{word}"


def entity_of(hass: HomeAssistant, entry: MockConfigEntry, stream: int) -> str:
    """Return the entity id of a datastream's sensor."""
    registry = er.async_get(hass)
    account = entry.unique_id.removeprefix("energydata_")  # type: ignore[union-attr]
    entity_id = registry.async_get_entity_id(
        "sensor", DOMAIN, f"energydata:{account}:{stream}"
    )
    assert entity_id, stream
    return entity_id


async def test_every_datastream_is_a_device_and_a_sensor(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Each subentry has its device and its sensor, showing the latest value."""
    entry = energydata_entry_for(simulator)
    assert await setup_entry(entry)
    for subentry in entry.subentries.values():
        stream = int(subentry.data["id"])
        devices = [
            device
            for device in dr.async_entries_for_config_entry(
                device_registry, entry.entry_id
            )
            if device.config_subentry_id == subentry.subentry_id
        ]
        assert [device.name for device in devices] == [EDK_STREAMS[stream]["name"]]
        state = hass.states.get(entity_of(hass, entry, stream))
        assert state
        assert state.name == EDK_STREAMS[stream]["name"]
        latest = simulator.energydata.latest(stream)
        assert latest is not None
        if isinstance(latest[1], str):
            assert state.state == latest[1]
        else:
            assert float(state.state) == pytest.approx(latest[1])


async def test_one_request_per_refresh(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """All datastreams' latest values come in one request, however many there are."""
    entry = energydata_entry_for(simulator)
    assert await setup_entry(entry)
    coordinator = entry.runtime_data
    simulator.clear_log()
    await coordinator.async_refresh()
    log = simulator.log_for("energydata")
    assert len(log) == 1
    assert "latest" in log[0].query
    assert sorted(int(i) for i in log[0].query["ids"].split(",")) == sorted(EDK_STREAMS)
    assert coordinator.provider.refresh_cost(coordinator.channels) == 1


async def test_statistics_equal_the_truth(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Registers as differences, amounts as they are: first import, restart, late data."""
    simulator.energydata.late(
        65603, NOW - timedelta(hours=20), NOW - timedelta(hours=18)
    )
    entry = energydata_entry_for(simulator, streams=[65603, 65607, 70001, 70003])
    assert await setup_entry(entry)
    start = NOW - timedelta(days=3)
    truth = energydata_truth(simulator, 70001, "register", start, datetime.now(UTC))
    assert_matches_truth(await stored(hass, statistic_id(entry, 70001)), truth, "70001")
    # No statistic for a measurement or text datastream.
    assert not await stored(hass, statistic_id(entry, 65603).replace("65603", "65863"))

    simulator.energydata.release_late()
    assert await hass.config_entries.async_unload(entry.entry_id)
    freezer.move_to(NOW + timedelta(days=1, hours=3))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    end = datetime.now(UTC)
    for stream in (65603, 65607, 70001, 70003):
        meaning = EDK_STREAMS[stream]["meaning"]
        assert_matches_truth(
            await stored(hass, statistic_id(entry, stream)),
            energydata_truth(simulator, stream, meaning, start, end),
            str(stream),
        )


async def test_statistics_of_unsorted_answers_equal_the_truth(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Answers served in a random order store the same statistics, to the truth.

    Each answer is shuffled whole; with HOLD_ROWS lowered the three-day backfill
    of minute data is read as several answers, each put in order before it is
    stored, and every hour of every statistic equals the ground truth.
    """
    monkeypatch.setattr(energydata_module, "HOLD_ROWS", 1000, raising=False)
    monkeypatch.setattr(energydata_module, "BATCH_ROWS", 400)
    simulator.energydata.shuffle(5)
    streams = [65603, 65607, 70001, 70003]
    entry = energydata_entry_for(simulator, streams=streams)
    assert await setup_entry(entry)
    start, end = NOW - timedelta(days=3), datetime.now(UTC)
    for stream in streams:
        meaning = EDK_STREAMS[stream]["meaning"]
        assert_matches_truth_until_now(
            await stored(hass, statistic_id(entry, stream)),
            energydata_truth(simulator, stream, meaning, start, end),
            str(stream),
        )
    assert len(simulator.log_for("energydata")) > len(streams) + 1


async def test_removing_a_datastream_removes_its_device_entity_and_statistic(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A datastream the user deletes takes its history with it; the others stay."""
    entry = energydata_entry_for(simulator, streams=[65603, 70001])
    assert await setup_entry(entry)
    gone = next(s for s in entry.subentries.values() if s.data["id"] == 70001)
    assert await stored(hass, statistic_id(entry, 70001))
    hass.config_entries.async_remove_subentry(entry, gone.subentry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert not await stored(hass, statistic_id(entry, 70001))
    assert await stored(hass, statistic_id(entry, 65603))
    unique_ids = {
        e.unique_id
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    assert not any(uid.endswith(":70001") for uid in unique_ids)
    assert any(uid.endswith(":65603") for uid in unique_ids)


async def test_a_datastream_removed_and_added_again_starts_over(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Removed and added back before the recorder wrote: a new history from zero.

    The removal is queued but not done when the new import reads the database,
    which still shows the old rows: the new import must not anchor on them.
    """
    entry = energydata_entry_for(simulator, streams=[65603, 70001])
    assert await setup_entry(entry)
    heating = next(s for s in entry.subentries.values() if s.data["id"] == 70001)
    assert await stored(hass, statistic_id(entry, 70001))
    async with recorder_queue_held(hass):
        hass.config_entries.async_remove_subentry(entry, heating.subentry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "datastream"), context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {"id": "70001", "name": "Heating", "type": "water_register", "topic": ""},
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"unit": "m³"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done(wait_background_tasks=True)
    start = NOW - timedelta(days=3)
    assert_matches_truth(
        await stored(hass, statistic_id(entry, 70001)),
        energydata_truth(simulator, 70001, "register", start, datetime.now(UTC)),
        "70001",
    )


async def test_unreadable_rows_are_reported_not_fatal(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Garbage lines in the CSV are skipped and said once; the values still come."""
    entry = energydata_entry_for(simulator, streams=[65603, 65863])
    assert await setup_entry(entry)
    simulator.energydata.garbage(65603, 3)
    await entry.runtime_data.async_refresh()
    assert entry.runtime_data.last_update_success
    assert (
        "row(s) on /datastreams/values that were skipped: 2 not id,timestamp,value"
        in caplog.text
    )
    state = hass.states.get(entity_of(hass, entry, 65603))
    assert state
    assert state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)


async def test_refused_token_starts_reauth(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """A revoked token asks for a new one."""
    entry = energydata_entry_for(simulator, streams=[65603])
    assert await setup_entry(entry)
    simulator.energydata.revoke(entry.data["api_token"])
    await entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
