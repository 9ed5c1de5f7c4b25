"""A statistic's id, once written, stays; names alike get ids of their own."""

from dataclasses import replace

from custom_components.cloud_energy_meters.const import CONF_API_URL, CONF_SITES
from custom_components.cloud_energy_meters.statistic_names import async_statistic_id
from custom_components.cloud_energy_meters.statistics import (
    ImportedStatistics,
    series_for,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tests.conftest import climkit_entry_for
from tests.provider_factory import build_provider
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_FERME


async def test_an_id_once_written_stays(
    hass: HomeAssistant, simulator: Simulator, recorder_mock: object
) -> None:
    """A renamed site keeps its statistic's id; names alike get ids of their own."""
    entry = climkit_entry_for(simulator, sites=[SITE_FERME.id])
    entry.add_to_hass(hass)
    provider = build_provider(
        "climkit",
        async_get_clientsession(hass),
        api_url=entry.data[CONF_API_URL],
        username=entry.data["username"],
        password=entry.data["password"],
    )
    inventory = await provider.async_discover(entry.data[CONF_SITES])
    (site,) = inventory.sites
    channel = next(c for c in inventory.channels if c.statistic)
    imported = ImportedStatistics(hass, entry.entry_id)
    await imported.async_load()
    series = series_for(provider.key, site, channel)
    first = await async_statistic_id(hass, imported, series)
    assert first == series.statistic_id

    renamed = series_for(provider.key, replace(site, name="Other name"), channel)
    assert renamed.statistic_id != first
    assert await async_statistic_id(hass, imported, renamed) == first
    again = ImportedStatistics(hass, entry.entry_id)  # after a restart
    await again.async_load()
    assert await async_statistic_id(hass, again, renamed) == first

    # Another meter named like the first: the same words, another id.
    twin = replace(series, key=f"{series.key}_twin")
    assert await async_statistic_id(hass, imported, twin) == f"{first}_2"

    # A statistic cleared (its datastream removed, say) gives its id back.
    await imported.async_set(imported.ids - {first})
    assert series.key not in imported.pinned
    other = replace(series, key=f"{series.key}_other")
    assert await async_statistic_id(hass, imported, other) == first
