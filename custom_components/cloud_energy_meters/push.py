"""Pushed readings (MQTT): a connection kept for as long as the entry is loaded.

Readings show on the entities at once; a connection down for PUSH_GRACE raises a
repair issue (polling goes on meanwhile), which goes when it is back.
"""

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN
from .providers import Provider
from .providers.model import Channel, Reading

PUSH_GRACE = timedelta(minutes=10)
"""How long pushes may be down before a repair issue explains it (polling goes on)."""


class PushListener:
    """Listen to a cloud's pushes for one entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        provider: Provider,
        on_readings: Callable[[dict[str, Reading]], None],
    ) -> None:
        """Bind the entry, its provider, and where readings go."""
        self.hass = hass
        self.entry = entry
        self.provider = provider
        self._on_readings = on_readings
        self.connected = False
        self._issue_timer: Callable[[], None] | None = None

    @callback
    def async_start(self, channels: Sequence[Channel]) -> None:
        """Connect and listen until the entry unloads or Home Assistant stops."""
        self.entry.async_on_unload(self._cancel_issue_timer)
        self._state(False)
        # Kept for as long as the entry lives. Home Assistant cancels the task when
        # the entry unloads and when it stops; the cancel ends in a clean goodbye.
        task = self.entry.async_create_background_task(
            self.hass,
            self.provider.async_listen(channels, self._on_readings, self._state),
            f"{DOMAIN} push {self.entry.entry_id}",
        )

        async def stop_listening(_event: Event | None = None) -> None:
            # Unloading runs this before it cancels the entry's background tasks;
            # stopping cancels them first but then waits only for the stop event's
            # listeners: waiting here lets the goodbye finish either way.
            if not task.cancelling():
                task.cancel()
            await asyncio.wait([task])
            # The goodbye reported the connection down: no repair issue for that.
            self._cancel_issue_timer()

        self.entry.async_on_unload(stop_listening)
        # (Not listen_once: removing a listener that already fired logs an error.)
        self.entry.async_on_unload(
            self.hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, stop_listening)
        )

    @callback
    def _state(self, connected: bool) -> None:
        """Track the connection; raise a repair issue if it stays down."""
        self.connected = connected
        issue_id = f"push_unreachable_{self.entry.entry_id}"
        if connected:
            self._cancel_issue_timer()
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        if self._issue_timer is not None or self.hass.is_stopping:
            return

        @callback
        def still_down(_now: datetime) -> None:
            # Connecting cancels this timer: the connection is still down.
            self._issue_timer = None
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="push_unreachable",
                translation_placeholders={
                    "entry": self.entry.title,
                    "minutes": str(int(PUSH_GRACE.total_seconds() // 60)),
                },
            )

        self._issue_timer = async_call_later(self.hass, PUSH_GRACE, still_down)

    @callback
    def _cancel_issue_timer(self) -> None:
        if self._issue_timer is not None:
            self._issue_timer()
            self._issue_timer = None
