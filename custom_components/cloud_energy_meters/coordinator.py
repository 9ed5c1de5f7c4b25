"""One coordinator class for every cloud, parameterised by its Provider.

It polls the latest values on an interval the cloud's rate budget allows, re-lists sites
and channels now and then (new meters appear, vanished ones go), and imports history
into long-term statistics on its own hourly cadence, apart from polling, so a slow
backfill never holds entities back and a failing history call never makes them
unavailable.
"""

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
import logging
import math

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .accounts import account_state
from .const import (
    BUDGET_SHARE,
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_UPDATE_INTERVAL,
    DISCOVERY_INTERVAL,
    DOMAIN,
)
from .entity import expected_unique_ids
from .providers import PROVIDERS, Provider
from .providers.errors import AuthError, ProviderError, RateLimited
from .providers.model import Channel, Inventory, Reading
from .statistics import ImportResult, async_import_series, series_for

_LOGGER = logging.getLogger(__name__)

type CloudEnergyConfigEntry = ConfigEntry[CloudEnergyCoordinator]

MIN_UPDATE_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CloudData:
    """What entities show: the inventory they belong to and the latest readings."""

    inventory: Inventory
    readings: Mapping[str, Reading]


@contextmanager
def provider_errors() -> Iterator[None]:
    """Translate the cloud layer's errors into what Home Assistant acts on."""
    try:
        yield
    except AuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="invalid_auth",
            translation_placeholders={"error": str(err)},
        ) from err
    except RateLimited as err:
        raise UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="rate_limited",
            translation_placeholders={"seconds": f"{err.retry_after:.0f}"},
            retry_after=err.retry_after,
        ) from err
    except ProviderError as err:
        raise UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="update_failed",
            translation_placeholders={"error": str(err)},
        ) from err


def minimum_interval(provider: type[Provider], cost: int) -> timedelta:
    """Return the fastest polling interval a refresh of `cost` requests may use.

    Polling may take only part of the account's budget: discovery and the hourly
    history import need the rest.
    """
    seconds = provider.policy.seconds_for(cost) / BUDGET_SHARE
    return max(MIN_UPDATE_INTERVAL, timedelta(minutes=math.ceil(seconds / 60)))


class CloudEnergyCoordinator(DataUpdateCoordinator[CloudData]):
    """Poll one account's latest values; import its history into statistics."""

    config_entry: CloudEnergyConfigEntry

    def __init__(self, hass: HomeAssistant, entry: CloudEnergyConfigEntry) -> None:
        """Create the provider for the entry's account."""
        provider_class = PROVIDERS[entry.data[CONF_PROVIDER]]
        self.provider: Provider = provider_class(
            async_get_clientsession(hass),
            api_url=entry.data[CONF_API_URL],
            credentials=entry.data,
            state=account_state(
                hass, provider_class, entry.data[CONF_API_URL], entry.data
            ),
        )
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{provider_class.name} {entry.title}",
            update_interval=timedelta(
                minutes=entry.options.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)
            ),
        )
        self.inventory: Inventory | None = None
        self.minimum_interval = MIN_UPDATE_INTERVAL
        self.imports: dict[str, ImportResult] = {}
        self._discovered_at: datetime | None = None
        self._import_lock = asyncio.Lock()
        self._failing_imports: set[str] = set()
        self._discover_only = True

    @property
    def site_ids(self) -> list[str]:
        """Return the sites the user chose for this entry."""
        return list(self.config_entry.data[CONF_SITES])

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Return every channel of the entry's sites."""
        return self.inventory.channels if self.inventory else ()

    async def _async_setup(self) -> None:
        """List the entry's sites and channels before the first poll."""
        await self._async_discover()

    async def _async_discover(self) -> None:
        """Re-list sites and channels; forget entities and devices that are gone."""
        with provider_errors():
            inventory = await self.provider.async_discover(self.site_ids)
        self.inventory = inventory
        self._discovered_at = dt_util.utcnow()
        self._apply_budget()
        self._report_missing_sites()
        self._prune_registries()

    def _apply_budget(self) -> None:
        """Keep polling within the rate budget, whatever interval the user asked."""
        self.minimum_interval = minimum_interval(
            type(self.provider), self.provider.refresh_cost(self.channels)
        )
        wanted = timedelta(
            minutes=self.config_entry.options.get(
                CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL
            )
        )
        if wanted < self.minimum_interval:
            _LOGGER.info(
                "Polling %s every %s instead of %s: one refresh costs %s requests",
                self.name,
                self.minimum_interval,
                wanted,
                self.provider.refresh_cost(self.channels),
            )
        self.update_interval = max(wanted, self.minimum_interval)

    def _report_missing_sites(self) -> None:
        """Raise a repair issue while chosen sites are no longer in the account."""
        assert self.inventory is not None
        present = {site.id for site in self.inventory.sites}
        missing = [site_id for site_id in self.site_ids if site_id not in present]
        issue_id = f"sites_missing_{self.config_entry.entry_id}"
        if not missing:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="sites_missing",
            translation_placeholders={
                "entry": self.config_entry.title,
                "sites": ", ".join(missing),
            },
        )

    def _prune_registries(self) -> None:
        """Remove entities and devices of channels and sites that no longer exist."""
        assert self.inventory is not None
        entry_id = self.config_entry.entry_id
        keep = expected_unique_ids(self.provider.key, self.inventory)
        entities = er.async_get(self.hass)
        for entity in er.async_entries_for_config_entry(entities, entry_id):
            if entity.unique_id not in keep:
                _LOGGER.debug("Removing %s: its channel is gone", entity.entity_id)
                entities.async_remove(entity.entity_id)
        sites = {(DOMAIN, site.id) for site in self.inventory.sites}
        devices = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(devices, entry_id):
            if not device.identifiers & sites:
                _LOGGER.debug("Removing device %s: its site is gone", device.name)
                devices.async_remove_device(device.id)

    async def _async_update_data(self) -> CloudData:
        """Fetch the latest values (re-listing channels when that is due).

        The first refresh, during setup, only discovers: it proves the credentials and
        creates the entities. Their values follow in the background (see
        `async_start`), because at one request per second a full refresh of a large
        account would hold the config flow and Home Assistant's start for a minute.
        """
        if (
            self._discovered_at is None
            or dt_util.utcnow() - self._discovered_at >= DISCOVERY_INTERVAL
        ):
            await self._async_discover()
        assert self.inventory is not None
        if self._discover_only:
            self._discover_only = False
            return CloudData(inventory=self.inventory, readings={})
        with provider_errors():
            readings = await self.provider.async_latest(self.channels)
        return CloudData(inventory=self.inventory, readings=readings)

    @callback
    def async_start(self) -> None:
        """Fetch the first values, then import history, in the background."""

        async def first_values_then_history() -> None:
            await self.async_refresh()
            await self.async_import_statistics()

        self.config_entry.async_create_background_task(
            self.hass,
            first_values_then_history(),
            f"{DOMAIN} start {self.config_entry.entry_id}",
        )

    # Statistics -----------------------------------------------------------------------

    @callback
    def async_schedule_import(self, _now: datetime | None = None) -> None:
        """Start a history import in the background unless one is running."""
        if self._import_lock.locked():
            return
        self.config_entry.async_create_background_task(
            self.hass,
            self.async_import_statistics(),
            f"{DOMAIN} statistics import {self.config_entry.entry_id}",
        )

    async def async_import_statistics(self) -> None:
        """Import every history channel of the entry into its statistic."""
        async with self._import_lock:
            inventory = self.inventory
            assert inventory is not None  # discovered before the first import
            backfill = timedelta(
                days=min(
                    self.config_entry.options.get(
                        CONF_BACKFILL_DAYS, DEFAULT_BACKFILL_DAYS
                    ),
                    self.provider.max_history_days,
                )
            )
            for channel in inventory.channels:
                site = inventory.site(channel.site_id)
                if not (channel.history and channel.statistic and site):
                    continue
                series = series_for(self.provider.key, site, channel)
                try:
                    result = await async_import_series(
                        self.hass,
                        series,
                        partial(self.provider.async_history, channel),
                        now=dt_util.utcnow(),
                        backfill=backfill,
                    )
                except AuthError:
                    _LOGGER.warning(
                        "%s refused the credentials while importing history",
                        self.provider.name,
                    )
                    self.config_entry.async_start_reauth(self.hass)
                    return
                except RateLimited as err:
                    _LOGGER.warning(
                        "%s asked to slow down; history import resumes within the hour "
                        "(%s)",
                        self.provider.name,
                        err,
                    )
                    return
                except ProviderError as err:
                    if series.statistic_id not in self._failing_imports:
                        _LOGGER.warning(
                            "Could not import the history of %s; nothing of it was "
                            "stored and it will be tried again within the hour: %s",
                            series.name,
                            err,
                        )
                    self._failing_imports.add(series.statistic_id)
                    continue
                if series.statistic_id in self._failing_imports:
                    self._failing_imports.discard(series.statistic_id)
                    _LOGGER.info("History of %s imports again", series.name)
                self.imports[series.statistic_id] = result
