"""Alerts a cloud reports on equipment: open ones tracked, changes told as events."""

from collections.abc import Iterable
from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from .const import EVENT_ALERT
from .ids import device_identifier
from .providers.model import Alert, Inventory

ALERT_MEMORY = timedelta(days=1)
"""How long a closed alert is remembered (one sent twice is not announced twice)."""


class AlertTracker:
    """The alerts of one entry, and the events that announce them."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Start knowing no alert."""
        self.hass = hass
        self.entry = entry
        self.alerts: dict[str, Alert] = {}
        self._read = False

    def apply(self, alerts: Iterable[Alert], inventory: Inventory | None) -> None:
        """Track open alerts; tell automations when one opens or closes."""
        for alert in alerts:
            before = self.alerts.get(alert.id)
            self.alerts[alert.id] = alert
            # The first read only learns: a restart must not announce every alert again.
            if not self._read:
                continue
            if before is None:
                self._fire(alert, inventory, opened=True)
                if not alert.open:
                    self._fire(alert, inventory, opened=False)
            elif before.open and not alert.open:
                self._fire(alert, inventory, opened=False)
        self._read = True
        horizon = dt_util.utcnow() - ALERT_MEMORY
        self.alerts = {
            key: alert
            for key, alert in self.alerts.items()
            if alert.end is None or alert.end > horizon
        }

    def _fire(self, alert: Alert, inventory: Inventory | None, *, opened: bool) -> None:
        site = inventory.site(alert.site_id) if inventory else None
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            device_identifier(alert.device_id), self.entry.entry_id
        )
        self.hass.bus.async_fire(
            EVENT_ALERT,
            {
                "entry_id": self.entry.entry_id,
                "alert_id": alert.id,
                "state": "opened" if opened else "closed",
                "opened": opened,
                "component_id": alert.source_id,
                "component_name": alert.device_name,
                "device_id": device.id if device else None,
                "site_id": alert.site_id,
                "site_name": site.name if site else None,
                "alert_type": alert.type,
                "priority": alert.priority,
                "start": alert.start.isoformat(),
                "end": alert.end.isoformat() if alert.end else None,
                "description": alert.description,
                "details": alert.details,
            },
        )
