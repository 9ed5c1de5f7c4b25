"""Statistics people find in the Energy dashboard's picker, by the words they read.

Home Assistant's statistic picker (frontend 20260930, in Home Assistant 2026.10)
searches an external statistic by its id and its integration's name, not by the
name it shows; every word typed must match. So each word of a statistic's name
(the site, the meter, what it is) must be in its id, and the cloud's own ids must
not stand in for them. Ids once written stay: statistics stored under the ids of
earlier versions move with every hour, and the Energy dashboard's settings follow.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
import re

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.cloud_energy_meters.const import CONF_API_URL, CONF_SITES, DOMAIN
from custom_components.cloud_energy_meters.ids import statistic_id_of
from custom_components.cloud_energy_meters.statistics import (
    async_import_series,
    series_for,
)
from homeassistant.components.energy.data import async_get_manager
from homeassistant.components.recorder.statistics import async_list_statistic_ids
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import slugify
from tests.conftest import (
    SetupEntry,
    climkit_entry_for,
    energydata_entry_for,
    locus_entry_for,
)
from tests.copper.entries import copper_entry
from tests.flexmeasures.sim_entries import flexmeasures_sim_entry
from tests.helpers import stored_at
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_FERME

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

ENTRIES: dict[str, Callable[[Simulator], MockConfigEntry]] = {
    "climkit": climkit_entry_for,
    "locus": locus_entry_for,
    "energydata": energydata_entry_for,
    "copper": copper_entry,
    "flexmeasures": flexmeasures_sim_entry,
}


def found_by(words: str, statistic_id: str) -> bool:
    """Tell whether the picker finds a statistic by these words: each in its id.

    Accents and case do not count (the picker ignores them); underscores separate
    words in an id as spaces do in a name.
    """
    searched = statistic_id.partition(":")[2]
    return all(slugify(word) in searched for word in words.split() if slugify(word))


README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
CLOUD_NAMES = {
    "climkit": "Climkit",
    "locus": "Locus Energy",
    "energydata": "Energydata.dk",
    "copper": "Copper Labs",
    "flexmeasures": "FlexMeasures",
}


def readme_words(cloud: str) -> list[str]:
    """Return what the README's "Finding your statistics" says to type for a cloud."""
    section = README.split("### Finding your statistics in the Energy dashboard")[1]
    row = re.search(
        rf"^\| {re.escape(CLOUD_NAMES[cloud])} \| (.+?) \|", section, re.MULTILINE
    )
    assert row, cloud
    return re.findall(r"`([^`]+)`", row.group(1))


async def ours(hass: HomeAssistant) -> dict[str, str]:
    """Return statistic id -> name of our statistics, as the picker lists them."""
    await async_wait_recording_done(hass)
    listed = await async_list_statistic_ids(hass, statistic_type="sum")
    return {
        meta["statistic_id"]: meta["name"]
        for meta in listed
        if meta["source"] == DOMAIN
    }


@pytest.mark.parametrize("cloud", list(ENTRIES))
@pytest.mark.freeze_time(NOW, tick=True)
async def test_the_picker_finds_every_statistic_by_its_name(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry, cloud: str
) -> None:
    """Each statistic of each cloud's demo entry: its name's words are in its id.

    The name says the site and what the statistic is; the id starts with the
    cloud, and no cloud id of a site takes the place of its name.
    """
    entry = ENTRIES[cloud](simulator)
    assert await setup_entry(entry)
    inventory = entry.runtime_data.inventory
    assert inventory is not None
    statistics = await ours(hass)
    assert statistics, cloud
    for statistic_id, name in statistics.items():
        assert statistic_id.startswith(f"{DOMAIN}:{cloud}_"), statistic_id
        assert found_by(name, statistic_id), (name, statistic_id)
        site = next(s for s in inventory.sites if name.startswith(f"{s.name} "))
        assert found_by(f"{cloud} {site.name}", statistic_id), statistic_id
        if slugify(site.id) != slugify(site.name):
            assert slugify(site.id) not in statistic_id, statistic_id
    for words in readme_words(cloud):  # what the README tells people to type
        assert any(found_by(words, sid) for sid in statistics), words
    if cloud == "climkit":
        assert (
            statistics[f"{DOMAIN}:climkit_residence_du_lac_site_grid_import"]
            == "Résidence du Lac Site grid import"
        )


async def _import_under_old_ids(
    hass: HomeAssistant, entry: MockConfigEntry
) -> dict[str, str]:
    """Import three days as the version before did, under the cloud's ids.

    Return each old id with the readable id it is to move to.
    """
    provider = build_provider(
        "climkit",
        async_get_clientsession(hass),
        api_url=entry.data[CONF_API_URL],
        username=entry.data["username"],
        password=entry.data["password"],
    )
    inventory = await provider.async_discover(entry.data[CONF_SITES])
    moves: dict[str, str] = {}
    for channel in inventory.channels:
        site = inventory.site(channel.site_id)
        if not (channel.history and channel.statistic and site):
            continue
        old = statistic_id_of(provider.key, channel)
        await async_import_series(
            hass,
            replace(series_for(provider.key, site, channel), statistic_id=old),
            partial(provider.async_history, channel),
            now=NOW,
            backfill=timedelta(days=3),
        )
        # The words people read, as the picker searches them.
        moves[old] = f"{DOMAIN}:{slugify(f'climkit {site.name} {channel.name}')}"
    return moves


@pytest.mark.freeze_time(NOW, tick=True)
async def test_statistics_under_old_ids_move_with_every_hour(
    hass: HomeAssistant,
    simulator: Simulator,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An upgrade moves each statistic to its readable id; nothing is lost.

    Every complete hour keeps its state and sum, the old ids are gone, the Energy
    dashboard's settings name the new ids, and removing the entry removes them.
    """
    entry = climkit_entry_for(simulator, sites=[SITE_FERME.id])
    entry.add_to_hass(hass)
    moves = await _import_under_old_ids(hass, entry)
    grid = next(old for old in moves if old.endswith("_site_electricity_grid_import"))
    solar = next(old for old in moves if old.endswith("_site_electricity_production"))
    manager = await async_get_manager(hass)
    await manager.async_update(
        {
            "energy_sources": [
                {
                    "type": "solar",
                    "stat_energy_from": solar,
                    "config_entry_solar_forecast": None,
                }
            ],
            "device_consumption": [{"stat_consumption": grid, "name": "Mine"}],
        }
    )
    before = {old: await stored_at(hass, old) for old in moves}
    assert all(before.values())
    assert SITE_FERME.id in grid  # the old ids were the cloud's

    freezer.move_to(NOW + timedelta(hours=5))
    assert await setup_entry(entry)

    for old, new in moves.items():
        assert SITE_FERME.id not in new
        after = await stored_at(hass, new)
        complete = [hour for hour in before[old] if hour < max(before[old])]
        assert {hour: after[hour] for hour in complete} == {
            hour: before[old][hour] for hour in complete
        }, new
        assert not await stored_at(hass, old)
    assert manager.data is not None
    assert manager.data["energy_sources"][0]["stat_energy_from"] == moves[solar]
    assert manager.data["device_consumption"] == [
        {"stat_consumption": moves[grid], "name": "Mine"}
    ]

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not await ours(hass)
