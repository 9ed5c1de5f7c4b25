"""The request plan of an entry whose cloud counts requests against budgets.

The cloud counts every request of the account in rolling windows, across Home
Assistant restarts: so does the entry. The times of requests still in a window and
when each statistic's history was last imported are kept in the entry's storage,
so ten restarts in an hour neither send ten times the first requests nor forget
what the hour already spent.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import CONF_BUDGET_SHARE, DEFAULT_BUDGET_SHARE, DOMAIN
from .providers import Provider
from .providers.plan import Demand, Plan, plan
from .registry import RegistryUpkeep

_LOGGER = logging.getLogger(__name__)

SAVE_DELAY = 10.0
"""Seconds to gather requests before writing (a stop writes at once)."""
DUE_SLACK = timedelta(minutes=5)
"""A statistic is due a little before its cadence has passed: the hourly rounds
start a few seconds later each time."""


def requests_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Return where an entry keeps its request times between restarts."""
    return Store(hass, 1, f"{DOMAIN}.{entry_id}.requests")


class Pacing:
    """Plan an entry's requests; remember what the cloud still counts."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        provider: Provider,
        registry: RegistryUpkeep,
    ) -> None:
        """Bind the entry, its provider and where its repair issues go."""
        self.hass = hass
        self.entry = entry
        self.provider = provider
        self.registry = registry
        self.budgets = provider.policy.budgets
        self.plan: Plan | None = None
        self._store = requests_store(hass, entry.entry_id)
        self._imported: dict[str, datetime] = {}
        if self.active:
            entry.async_on_unload(self.async_flush)

    @property
    def active(self) -> bool:
        """Tell whether the cloud has budgets to plan for."""
        return bool(self.budgets)

    @property
    def share(self) -> float:
        """Return the part of the budgets this entry may spend (an option)."""
        percent = self.entry.options.get(CONF_BUDGET_SHARE, DEFAULT_BUDGET_SHARE)
        return max(1, min(100, int(percent))) / 100

    async def async_load(self) -> None:
        """Count the requests sent before the restart; recall the last imports."""
        if not self.active:
            return
        saved = await self._store.async_load() or {}
        sent = saved.get("sent")
        if isinstance(sent, list):
            self.provider.state.limiter.restore(sent)
        self.provider.state.limiter.restore_lowered(saved.get("lowered_until"))
        if isinstance(memory := saved.get("memory"), Mapping):
            self.provider.recall(memory)
        imported = saved.get("imported")
        if isinstance(imported, Mapping):
            for statistic_id, moment in imported.items():
                if isinstance(moment, str) and (
                    parsed := dt_util.parse_datetime(moment)
                ):
                    self._imported[str(statistic_id)] = parsed

    def update(self, demand: Demand) -> Plan:
        """Plan for what the entry asks now; say so when it cannot fit."""
        share = self.share
        self.plan = planned = plan(demand, self.budgets, share)
        limiter = self.provider.state.limiter
        limiter.share = share
        limiter.reserve = planned.reserve
        self.registry.issue(
            "budget_too_small",
            None
            if planned.feasible
            else {
                "share": f"{share:.0%}",
                "series": str(demand.series),
                "hours": f"{planned.history.total_seconds() / 3600:.0f}",
                "minutes": f"{planned.refresh.total_seconds() / 60:.0f}",
            },
        )
        return planned

    def due(self, statistic_id: str, now: datetime) -> bool:
        """Tell whether a statistic's history is due for import."""
        if self.plan is None or (last := self._imported.get(statistic_id)) is None:
            return True
        return now - last >= self.plan.history - DUE_SLACK

    @callback
    def imported(self, statistic_id: str, now: datetime) -> None:
        """Note a statistic's history imported now."""
        self._imported[statistic_id] = now
        self.save()

    @callback
    def save(self) -> None:
        """Write the request times and import times soon."""
        if self.active:
            self._store.async_delay_save(self._data, SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write now (the entry unloads: a reload must see every request)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {
            "sent": self.provider.state.limiter.sent_at(),
            "lowered_until": self.provider.state.limiter.lowered_until(),
            "memory": self.provider.memory(),
            "imported": {
                statistic_id: moment.isoformat()
                for statistic_id, moment in self._imported.items()
            },
        }
