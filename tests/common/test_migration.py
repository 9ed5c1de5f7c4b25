"""Entries made by version 1 move to version 2's ids, losing nothing.

Version 1 named an Energydata.dk entry after a hash of its token: its statistic ids,
device identifiers and entity unique ids carried it, so a new token would have
orphaned them. The entry made here is what version 1 left: the same ids, its history
imported by the same importer from the simulator, entities the user renamed and
put in areas. After the migration every stored hour is where the new ids say, and
names, areas and entity ids are as the user left them.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
import hashlib

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.statistics import (
    async_import_series,
    async_move_statistic,
    series_for,
)
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tests.conftest import EDK_STREAMS, SetupEntry, climkit_entry_for
from tests.helpers import (
    assert_matches_truth_until_now,
    busy_recorder,
    energydata_truth,
    expected_series,
    stored,
    stored_at,
)
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_FERME, SITE_LAC
from tests.simulator.energydata import DEMO_TOKEN

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
STREAMS = [65603, 70001, 65863]  # a register, a volume register, a measurement
OLD = hashlib.sha256(DEMO_TOKEN.encode()).hexdigest()[:12]  # version 1's site id


def version_1_entry(simulator: Simulator) -> MockConfigEntry:
    """Return an Energydata.dk entry as version 1 stored it."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title=f"Energydata.dk {OLD}",
        unique_id=f"energydata_{OLD}",
        data={
            CONF_PROVIDER: "energydata",
            "api_token": DEMO_TOKEN,
            CONF_API_URL: simulator.url("energydata"),
            "mqtt_host": "127.0.0.1",
            "mqtt_port": 1,
            CONF_SITES: [OLD],
            CONF_KNOWN_SITES: [OLD],
        },
        subentries_data=[
            ConfigSubentryData(
                data={"id": stream, **EDK_STREAMS[stream], "topic": ""},
                subentry_type="datastream",
                title=EDK_STREAMS[stream]["name"],
                unique_id=str(stream),
            )
            for stream in STREAMS
        ],
    )


async def _import_the_old_way(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Import three days of history under version 1's ids, with today's importer."""
    provider = build_provider(
        "energydata",
        async_get_clientsession(hass),
        api_url=entry.data[CONF_API_URL],
        settings={
            "account_id": OLD,  # version 1's site id was the token's hash
            "datastreams": [dict(s.data) for s in entry.subentries.values()],
        },
    )
    inventory = await provider.async_discover([])
    (site,) = inventory.sites
    for channel in inventory.channels:
        if channel.statistic:
            series = series_for(provider.key, site, channel)
            await async_import_series(
                hass,
                replace(series, statistic_id=series.key),  # version 1's id
                partial(provider.async_history, channel),
                now=NOW,
                backfill=timedelta(days=3),
            )


def _register_the_old_way(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Register version 1's devices and entities, customised by the user."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    kitchen = ar.async_get(hass).async_create("Kitchen")
    site = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, OLD)},
        name="Energydata.dk",
    )
    for subentry in entry.subentries.values():
        stream = subentry.data["id"]
        device = devices.async_get_or_create(
            config_entry_id=entry.entry_id,
            config_subentry_id=subentry.subentry_id,
            identifiers={(DOMAIN, f"datastream-{stream}")},
            name=subentry.title,
            via_device_id=site.id,
        )
        devices.async_update_device(device.id, area_id=kitchen.id)
        entity = entities.async_get_or_create(
            "sensor",
            DOMAIN,
            f"energydata:{OLD}:{stream}",
            config_entry=entry,
            config_subentry_id=subentry.subentry_id,
            device_id=device.id,
            suggested_object_id=f"datastream_{stream}",
        )
        entities.async_update_entity(
            entity.entity_id, name=f"My {stream}", area_id=kitchen.id
        )


def _statistic(site: str, stream: int) -> str:
    word = {"energy": "energy", "water": "volume"}[EDK_STREAMS[stream]["quantity"]]
    return f"{DOMAIN}:energydata_{site}_{stream}_{word}"


@pytest.mark.parametrize("write_seconds", [0, 0.2], ids=["idle", "busy_recorder"])
@pytest.mark.freeze_time(NOW, tick=True)
async def test_an_energydata_entry_of_version_1_keeps_every_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    write_seconds: float,
) -> None:
    """The token's hash leaves every id; history, names and areas stay.

    Every stored hour (state and sum) is under the new id, the old ids are gone, and
    the import after the migration resumes where version 1 stopped. On a slow
    database too: each id's rows are moved on only once the recorder wrote them
    (with the recorder's thread busy writing, its queue looks empty).
    """
    entry = version_1_entry(simulator)
    entry.add_to_hass(hass)
    await _import_the_old_way(hass, entry)
    _register_the_old_way(hass, entry)
    before = {
        stream: await stored(hass, _statistic(OLD, stream)) for stream in (65603, 70001)
    }
    assert all(before.values())
    entities = er.async_get(hass)
    names = {
        e.entity_id: (e.name, e.area_id)
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
    }
    device_ids = {
        d.id
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    }

    freezer.move_to(NOW + timedelta(hours=5))
    with busy_recorder(hass, write_seconds):
        assert await setup_entry(entry)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    new = entry.data["account_id"]
    assert new != OLD
    assert entry.unique_id == f"energydata_{new}"
    assert entry.data[CONF_SITES] == [new]
    assert entry.title == "Energydata.dk"

    for stream, rows in before.items():
        after = await stored(hass, _statistic(new, stream))
        # Every hour version 1 stored is there, unchanged (state and sum), but its
        # last: stored while incomplete, the import after the migration completed it.
        complete = [hour for hour in rows if hour < max(rows)]
        assert {hour: after[hour] for hour in complete} == {
            hour: rows[hour] for hour in complete
        }
        # The import after the migration resumed: the truth up to now, exactly.
        meaning = EDK_STREAMS[stream]["meaning"]
        truth = energydata_truth(
            simulator, stream, meaning, NOW - timedelta(days=3), datetime.now(UTC)
        )
        assert_matches_truth_until_now(after, truth, str(stream))
        assert not await stored(hass, _statistic(OLD, stream))
        # Nothing was left behind on the way: the key only names the readable id.
        assert not await stored_at(hass, _statistic(new, stream))

    migrated = [
        e
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
        if e.unique_id != f"energydata:{new}:history_import"  # added since version 1
    ]
    assert {e.entity_id: (e.name, e.area_id) for e in migrated} == names
    assert {e.unique_id for e in migrated} == {
        f"energydata:{new}:{stream}" for stream in STREAMS
    }
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert {d.id for d in devices} == device_ids
    identifiers = {i for d in devices for _, i in d.identifiers}
    assert identifiers == {new} | {f"{new}:datastream:{s}" for s in STREAMS}
    for ident in [*identifiers, *(e.unique_id for e in migrated), entry.unique_id]:
        assert OLD not in ident
        assert DEMO_TOKEN not in ident

    # Removing the entry removes the history it moved, too.
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    for stream in before:
        assert not await stored(hass, _statistic(new, stream))


@pytest.mark.freeze_time(NOW, tick=True)
async def test_a_climkit_entry_of_version_1_records_what_it_wrote(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Ids stay; sites dropped before the migration are cleared with the entry.

    Version 1 kept the statistics of a site the user dropped, and did not remember
    them: the migration finds them among the known sites no other entry holds.
    """
    entry = climkit_entry_for(simulator)
    assert await setup_entry(entry)  # a version 2 entry writes all three sites
    await async_wait_recording_done(hass)  # as at a restart: all of it committed
    hass.config_entries.async_update_entry(
        entry,
        version=1,
        data={**entry.data, CONF_SITES: [SITE_LAC.id, SITE_CENTRALE.id]},
    )
    imported = entry.runtime_data.imported
    assert await hass.config_entries.async_unload(entry.entry_id)
    for key, statistic_id in imported.pinned.items():
        assert await async_move_statistic(hass, statistic_id, key)  # version 1's ids
    await async_wait_recording_done(hass)
    await imported.async_set([])  # version 1 kept no record
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.version == 2
    assert entry.unique_id == "climkit_demo"
    ids = [
        sid
        for site in (SITE_LAC, SITE_FERME)
        for sid in expected_series(simulator, site)
    ]
    assert all([await stored(hass, sid) for sid in ids])
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not any([await stored(hass, sid) for sid in ids])


async def test_an_entry_of_a_newer_version_is_left_alone(
    hass: HomeAssistant, simulator: Simulator, recorder_mock: object
) -> None:
    """After a downgrade, an entry a newer version made is not loaded (nor changed)."""
    entry = climkit_entry_for(simulator)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, version=3)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
