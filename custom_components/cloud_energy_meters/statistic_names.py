"""Statistic ids people can find: readable, pinned once written, moved from old ids.

Home Assistant's statistic picker (the Energy dashboard's, frontend 20260930) finds
an external statistic by its id and its integration's name only: the name it shows
is not among its search keys. So the id carries the words people type: the cloud,
the site, the meter and what it measures (`readable_statistic_id`).

An id is made from the names when the statistic is first written, then pinned in
the entry's record: a site or meter renamed later keeps its statistic, its history
and its place on the dashboard. A statistic stored under its key (the cloud's ids,
as every statistic was before) moves to its readable id with every row, and the
Energy dashboard's settings follow it.
"""

from collections.abc import Mapping
import logging
from typing import Any, cast

from homeassistant.components.energy.data import (
    EnergyPreferencesUpdate,
    async_get_manager,
)
from homeassistant.core import HomeAssistant

from .const import DOMAIN
from .statistics import (
    ImportedStatistics,
    Series,
    async_move_statistic,
    async_stored_statistics,
    pinned_ids,
    queued_rows,
)

_LOGGER = logging.getLogger(__name__)

_ENERGY_KEYS = ("energy_sources", "device_consumption", "device_consumption_water")


async def async_statistic_id(
    hass: HomeAssistant, imported: ImportedStatistics, series: Series
) -> str:
    """Return where a series is stored: its pinned id, or a readable one pinned now."""
    if (pinned := imported.pinned.get(series.key)) is not None:
        return pinned
    taken = pinned_ids(hass) | set(await async_stored_statistics(hass, [f"{DOMAIN}:"]))
    statistic_id = series.statistic_id
    number = 1
    while statistic_id in taken:
        number += 1  # two meters of a site named alike, two sites named alike
        statistic_id = f"{series.statistic_id}_{number}"
    if (queued := queued_rows(hass).get(series.key)) and queued.pending:
        # Just moved here from an older id (a version 1 entry): let it land first.
        assert queued.committed is not None
        await queued.committed
    if await async_move_statistic(hass, series.key, statistic_id):
        _LOGGER.info("Statistic %s is now %s", series.key, statistic_id)
        await _async_follow_in_energy(hass, series.key, statistic_id)
    await imported.async_pin(series.key, statistic_id)
    return statistic_id


async def _async_follow_in_energy(hass: HomeAssistant, old: str, new: str) -> None:
    """Point the Energy dashboard's settings at a statistic's new id."""
    manager = await async_get_manager(hass)
    if manager.data is None:
        return
    update = {
        key: _renamed(manager.data[key], old, new)  # type: ignore[literal-required]
        for key in _ENERGY_KEYS
        if key in manager.data
    }
    if update != {key: manager.data.get(key) for key in update}:
        await manager.async_update(cast("EnergyPreferencesUpdate", update))


def _renamed(value: Any, old: str, new: str) -> Any:
    """Return `value` with every string equal to `old` replaced by `new`."""
    if value == old:
        return new
    if isinstance(value, Mapping):
        return {key: _renamed(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, old, new) for item in value]
    return value
