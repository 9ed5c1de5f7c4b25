"""An entry's offer to fill the Energy dashboard: its repair issue and its answer.

The offer is raised once the entry's history has been imported (its statistics exist
only then) and whenever an import brings statistics the dashboard lacks; it goes when
nothing is left to add. Accepting adds them (energy.py says how); what was accepted is
kept, so a statistic the user removes from the dashboard later is not offered again.
"""

from collections.abc import Callable

from homeassistant.components.energy.data import (
    EnergyManager,
    EnergyPreferences,
    async_get_manager,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .energy import ISSUE, Offer, issue_id, merged, statistics_in


def offer_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, list[str]]]:
    """Return where an entry keeps the statistics it added to the dashboard."""
    return Store(hass, 1, f"{DOMAIN}.{entry_id}.energy")


def _prefs(manager: EnergyManager) -> EnergyPreferences:
    return manager.data or EnergyManager.default_preferences()


class EnergyOffer:
    """One entry's offer; `candidates` returns what its imported statistics make."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, candidates: Callable[[], Offer]
    ) -> None:
        """Bind the entry (load before use)."""
        self.hass = hass
        self.entry = entry
        self._candidates = candidates
        self._store = offer_store(hass, entry.entry_id)
        self.accepted: set[str] = set()

    async def async_load(self) -> None:
        """Read what was accepted before."""
        saved = await self._store.async_load()
        self.accepted = set(saved["accepted"]) if saved else set()

    async def async_remaining(self) -> Offer:
        """Return what the dashboard would get now."""
        prefs = _prefs(await async_get_manager(self.hass))
        return self._candidates().without(statistics_in(prefs) | self.accepted)

    async def async_update(self) -> None:
        """Raise the offer if there is something to add; clear it otherwise."""
        if not (await self.async_remaining()).ids:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry.entry_id))
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(self.entry.entry_id),
            is_fixable=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE,
            translation_placeholders={"entry": self.entry.title},
            data={"entry_id": self.entry.entry_id},
        )

    async def async_accept(self) -> None:
        """Add the offer to the energy preferences; remember it was accepted."""
        manager = await async_get_manager(self.hass)
        prefs = _prefs(manager)
        full = self._candidates()
        offer = full.without(statistics_in(prefs) | self.accepted)
        if offer.ids:
            added = merged(prefs, full, offer)
            await manager.async_update(
                {
                    "energy_sources": added["energy_sources"],
                    "device_consumption": added["device_consumption"],
                }
            )
        self.accepted |= full.ids
        await self._store.async_save({"accepted": sorted(self.accepted)})
