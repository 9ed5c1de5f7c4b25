"""Fix flows of the integration's repair issues: the Energy dashboard offer."""

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .energy import ISSUE
from .energy_offer import EnergyOffer


class EnergyOfferFlow(RepairsFlow):
    """Show what the Energy dashboard would get; one Submit adds it."""

    def __init__(self, entry_id: str) -> None:
        """Bind the entry the offer is of."""
        self._entry_id = entry_id

    def _offer(self) -> EnergyOffer | None:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        offer: EnergyOffer = entry.runtime_data.energy_offer
        return offer

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Go to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """List what would be added; add it on Submit."""
        if (offer := self._offer()) is None:
            return self.async_abort(reason="not_loaded")
        if user_input is not None:
            await offer.async_accept()
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            description_placeholders={
                "entry": offer.entry.title,
                **(await offer.async_remaining()).placeholders(),
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the fix flow of an issue (only the offer has one)."""
    assert issue_id.startswith(ISSUE) and data
    return EnergyOfferFlow(data["entry_id"])
