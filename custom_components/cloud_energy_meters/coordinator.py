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
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
import logging
import math
import ssl
from typing import Any, override

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .accounts import entry_account, save_to_account
from .alerts import AlertTracker
from .claims import sites_taken
from .const import (
    BUDGET_SHARE,
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_UPDATE_INTERVAL,
    DISCOVERY_INTERVAL,
    DOMAIN,
)
from .energy import Offer, plan
from .energy_offer import EnergyOffer
from .ids import channel_unique_id, statistic_id_of, statistic_prefix
from .pacing import Pacing
from .progress import ImportProgress
from .providers import PROVIDERS, Provider
from .providers.errors import AuthError, CannotConnect, ProviderError, RateLimited
from .providers.model import Alert, Channel, Inventory, Reading
from .providers.plan import Demand
from .providers.ratelimit import background
from .push import PushListener
from .registry import RegistryUpkeep
from .statistic_names import async_statistic_id
from .statistics import (
    ImportedStatistics,
    ImportResult,
    async_clear_statistics,
    async_import_series,
    series_for,
)

_LOGGER = logging.getLogger(__name__)

type CloudEnergyConfigEntry = ConfigEntry[CloudEnergyCoordinator]

MIN_UPDATE_INTERVAL = timedelta(minutes=1)
DISCOVERED_AT = "discovered_at"
"""When the saved inventory was listed (beside it in the entry's storage)."""
STORAGE_VERSION = 1
LAYOUT = "layout"
INVENTORY_LAYOUT = 3
"""How providers describe devices and channels; an inventory saved under another is
listed anew, so entities start on the devices they now belong to (2: a device per
Climkit meter) and channels count for what they now are (3: the roles of Copper's
electric meters and Climkit's heat meters)."""


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


def fastest_interval(provider: type[Provider], cost: int) -> timedelta:
    """Return the fastest polling interval a refresh of `cost` requests may use."""
    seconds = provider.policy.seconds_for(cost) / BUDGET_SHARE
    return max(MIN_UPDATE_INTERVAL, timedelta(minutes=math.ceil(seconds / 60)))


def provider_settings(
    entry: ConfigEntry,
    credentials: Mapping[str, Any],
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return what the user configured beyond credentials, for the provider.

    `data`: the entry's data as a flow changed it. Subentries come by type, plural
    (`datastreams`), each with its subentry id as `group`.
    """
    bookkeeping = {CONF_PROVIDER, CONF_API_URL, CONF_SITES, CONF_KNOWN_SITES}
    settings: dict[str, Any] = {
        key: value
        for key, value in (entry.data if data is None else data).items()
        if key not in bookkeeping and key not in credentials
    }
    for subentry in entry.subentries.values():
        settings.setdefault(f"{subentry.subentry_type}s", []).append(
            {**subentry.data, "group": subentry.subentry_id}
        )
    return settings


def inventory_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Return where an entry's last inventory is kept between restarts."""
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}")


class CloudEnergyCoordinator(DataUpdateCoordinator[Mapping[str, Reading]]):
    """Poll one account's latest values; import its history into statistics."""

    config_entry: CloudEnergyConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: CloudEnergyConfigEntry,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Create the provider for the entry's account."""
        provider_class = PROVIDERS[entry.data[CONF_PROVIDER]]
        credentials = {key: entry.data.get(key, "") for key in provider_class.form.keys}
        api_url = entry.data[CONF_API_URL]
        self.provider: Provider = provider_class(
            async_get_clientsession(hass),
            api_url=api_url,
            credentials=credentials,
            state=entry_account(hass, entry, provider_class, api_url, credentials),
            settings=provider_settings(entry, credentials),
            ssl_context=ssl_context,
        )
        super().__init__(
            hass, _LOGGER, config_entry=entry, name=entry.title, update_interval=None
        )
        self.inventory: Inventory | None = None
        self.minimum_interval = MIN_UPDATE_INTERVAL
        self.imports: dict[str, ImportResult] = {}
        self.import_progress = ImportProgress()
        self.imported = ImportedStatistics(hass, entry.entry_id)
        self._store = inventory_store(hass, entry.entry_id)
        self._discovered_at: datetime | None = None
        self._import_lock = asyncio.Lock()
        self._failing_imports: set[str] = set()
        self._import_paused = False
        self._values_wanted = False
        self.values_read = False
        """Whether the cloud's values were read since setup (until then, entities
        show what they showed before the reload or restart)."""
        self.registry = RegistryUpkeep(hass, entry, provider_class)
        self.alert_tracker = AlertTracker(hass, entry)
        self.push = PushListener(hass, entry, self.provider, self._push_readings)
        self.provider.on_credentials = partial(
            save_to_account, hass, entry, self.provider
        )
        self.pacing = Pacing(hass, entry, self.provider, self.registry)
        self.energy_offer = EnergyOffer(hass, entry, self._energy_candidates)
        self._apply_budget()

    @property
    def site_ids(self) -> list[str]:
        """Return the sites of this entry."""
        return list(self.config_entry.data[CONF_SITES])

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Return every channel of the entry's sites."""
        return self.inventory.channels if self.inventory else ()

    @override
    async def _async_setup(self) -> None:
        """Prove the credentials; list sites and channels unless known from last time.

        At a restart the inventory saved by the last discovery creates the entities at
        once; it is refreshed in the background with the first values.
        """
        await self.imported.async_load()
        await self.pacing.async_load()
        await self.energy_offer.async_load()
        with provider_errors():
            await self.provider.async_login()
        if self.provider.named_by_user:
            await self._async_discover()  # free: the user named every channel
        elif (
            inventory := self._restore(saved := await self._store.async_load())
        ) is not None:
            self.inventory = inventory
            # Sites the user no longer chose go now, not at the next listing.
            self.registry.prune(inventory, self.site_ids)
            if self.pacing.active and saved:
                # A cloud that counts requests is not asked again for what it
                # told minutes before the restart.
                self._discovered_at = dt_util.parse_datetime(
                    str(saved.get(DISCOVERED_AT))
                )
            self._apply_budget()
            self.registry.register_devices(inventory)
        else:
            await self._async_discover()

    def _restore(self, saved: Mapping[str, Any] | None) -> Inventory | None:
        """Return the saved inventory cut to the chosen sites, if it covers them all."""
        if not saved or saved.get(LAYOUT) != INVENTORY_LAYOUT:
            return None
        inventory = Inventory.from_dict(saved)
        chosen = set(self.site_ids)
        if not chosen & set(inventory.listed) <= {site.id for site in inventory.sites}:
            return None  # a site was chosen since: list it now
        return replace(
            inventory,
            sites=tuple(site for site in inventory.sites if site.id in chosen),
            channels=tuple(c for c in inventory.channels if c.site_id in chosen),
            devices=tuple(d for d in inventory.devices if d.site_id in chosen),
        )

    async def _async_discover(self) -> None:
        """Re-list sites and channels; follow new sites; forget what is gone."""
        with provider_errors():
            inventory = await self.provider.async_discover(self.site_ids)
            if new := self._adopt_new_sites(inventory):
                _LOGGER.info("%s: new sites %s are added", self.name, ", ".join(new))
                inventory = await self.provider.async_discover(self.site_ids)
        self.inventory = inventory
        self._discovered_at = dt_util.utcnow()
        self._apply_budget()
        self.registry.update(inventory, self.site_ids)
        if self.provider.named_by_user:
            await self._async_forget_removed_statistics()
        await self._store.async_save(
            {
                **inventory.as_dict(),
                DISCOVERED_AT: self._discovered_at.isoformat(),
                LAYOUT: INVENTORY_LAYOUT,
            }
        )

    async def _async_forget_removed_statistics(self) -> None:
        """Clear the statistics of channels the user removed, not of vanished ones."""
        assert self.inventory is not None
        current = {
            self.imported.pinned.get(series.key, series.key)
            for channel in self.inventory.channels
            if channel.statistic
            and (site := self.inventory.site(channel.site_id))
            and (series := series_for(self.provider.key, site, channel))
        }
        prefixes = [
            statistic_prefix(self.provider.key, site.id)
            for site in self.inventory.sites
        ]
        if cleared := await async_clear_statistics(
            self.hass, self.imported.ids, prefixes, keep=current
        ):
            await self.imported.async_set(self.imported.ids - set(cleared))

    def _adopt_new_sites(self, inventory: Inventory) -> list[str]:
        """Add sites new since the user chose, unless another entry holds them.

        Sites the user saw in the flow and left out stay out.
        """
        data = self.config_entry.data
        known = set(data.get(CONF_KNOWN_SITES, data[CONF_SITES]))
        taken = sites_taken(
            self.hass, self.provider.key, data[CONF_API_URL], self.config_entry.entry_id
        )
        new = [site for site in inventory.listed if site not in known | taken]
        if new:
            self.hass.config_entries.async_update_entry(
                self.config_entry,
                data={
                    **data,
                    CONF_SITES: [*data[CONF_SITES], *new],
                    CONF_KNOWN_SITES: [*known, *new],
                },
            )
        return new

    @property
    def _site_ids_present(self) -> list[str]:
        return [site.id for site in self.inventory.sites] if self.inventory else []

    def _wanted_channels(self) -> list[Channel]:
        """Return the channels whose entity is enabled (or will be, when created).

        A disabled entity costs no request: some clouds need one per kind of field.
        """
        registry = er.async_get(self.hass)
        entries = {
            entry.unique_id: entry
            for entry in er.async_entries_for_config_entry(
                registry, self.config_entry.entry_id
            )
        }
        wanted: list[Channel] = []
        for channel in self.channels:
            entry = entries.get(channel_unique_id(self.provider.key, channel))
            if (entry is None and channel.common) or (
                entry is not None and entry.disabled_by is None
            ):
                wanted.append(channel)
        return wanted

    def _apply_budget(self) -> None:
        """Keep polling within the rate budget, whatever interval the user asked.

        A cloud with request budgets gets a plan (pacing.py): the refresh interval
        and each statistic's history cadence, within the share of the budgets the
        entry may spend.
        """
        wanted_channels = self._wanted_channels()
        cost = self.provider.refresh_cost(wanted_channels, self._site_ids_present)
        # The statistics to import are known from here on: none stored yet is 0 %.
        if self.inventory is not None:
            self.import_progress.expect(
                statistic_id_of(self.provider.key, channel)
                for channel in self.inventory.channels
                if channel.history
                and channel.statistic
                and self.inventory.site(channel.site_id)
            )
        if self.pacing.active:
            self.minimum_interval = self.pacing.update(
                Demand(
                    refresh=cost,
                    listing=self.provider.listing_cost(self.site_ids),
                    series=sum(
                        1
                        for channel in self.channels
                        if channel.history and channel.statistic
                    ),
                    shortest_refresh=self.provider.shortest_refresh,
                )
            ).refresh
        else:
            self.minimum_interval = fastest_interval(type(self.provider), cost)
        wanted = timedelta(
            minutes=self.config_entry.options.get(
                CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL
            )
        )
        # Not when the floor is how often the cloud's values change: that is no
        # news, and no request count explains it.
        if wanted < self.minimum_interval > self.provider.shortest_refresh:
            _LOGGER.info(
                "Polling %s every %s instead of %s: one refresh costs %s requests",
                self.name,
                self.minimum_interval,
                wanted,
                cost,
            )
        self.update_interval = max(wanted, self.minimum_interval)

    @override
    async def _async_update_data(self) -> Mapping[str, Reading]:
        """Fetch the latest values (re-listing channels when that is due)."""
        # The first refresh (setup) fetches nothing: values follow in the background
        # (`async_start`); at one request a second a large account would hold the
        # config flow and Home Assistant's start for a minute.
        if not self._values_wanted:
            self._values_wanted = True
            return {}
        if (
            self._discovered_at is None
            or dt_util.utcnow() - self._discovered_at >= DISCOVERY_INTERVAL
        ):
            await self._async_discover()
        try:
            with provider_errors():
                latest = await self.provider.async_latest(
                    self._wanted_channels(), self._site_ids_present
                )
        finally:
            self.pacing.save()
        self.values_read = True
        if latest.gone:
            # A meter or sensor vanished: list the account again at the next refresh.
            self._discovered_at = None
        self.alert_tracker.apply(latest.alerts, self.inventory)
        return latest.readings

    async def async_rediscover(self) -> None:
        """List the account again now: a cloud's action changed what it holds."""
        self._discovered_at = None
        self.pacing.save()
        await self.async_refresh()

    @callback
    def async_start(self) -> None:
        """Fetch the first values, then import history; listen to pushes meanwhile."""

        async def first_values_then_history() -> None:
            await self.async_refresh()
            await self.async_import_statistics()

        self.config_entry.async_create_background_task(
            self.hass,
            first_values_then_history(),
            f"{DOMAIN} start {self.config_entry.entry_id}",
        )
        if self.provider.push_configured:
            self.push.async_start(self.channels)

    @callback
    def _push_readings(self, readings: dict[str, Reading]) -> None:
        """Show pushed readings at once, without postponing the next poll."""
        self.data = {**(self.data or {}), **readings}
        self.async_update_listeners()

    @property
    def push_connected(self) -> bool:
        """Tell whether pushed readings arrive now."""
        return self.push.connected

    @property
    def alerts(self) -> dict[str, Alert]:
        """Return the alerts the cloud reports (open ones, and those closed lately)."""
        return self.alert_tracker.alerts

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
        """Import every history channel of the entry into its statistic.

        A round stops at the first sign the cloud or the account is unwell (refused
        credentials, rate limit, no connection): the next round, within the hour,
        starts again. A failure of one statistic's data skips that statistic only.
        """
        if any(self.config_entry.async_get_active_flows(self.hass, {SOURCE_REAUTH})):
            return  # the stored credentials are refused: do not try them again
        async with self._import_lock:
            inventory = self.inventory
            assert inventory is not None  # set during setup
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
                # Before the schedule: a statistic under its old id moves now.
                series = replace(
                    series,
                    statistic_id=await async_statistic_id(
                        self.hass, self.imported, series
                    ),
                )
                now = dt_util.utcnow()
                if not self.pacing.due(series.key, now):
                    self.import_progress.finished(series.key)
                    continue
                await self.imported.async_add(series.statistic_id)
                try:
                    with background():
                        result = await async_import_series(
                            self.hass,
                            series,
                            partial(self.provider.async_history, channel),
                            now=now,
                            backfill=backfill,
                            reached=partial(
                                self.import_progress.reached,
                                series.key,
                                now=now,
                                backfill=backfill,
                            ),
                        )
                except AuthError:
                    _LOGGER.warning(
                        "%s refused the credentials while importing history",
                        self.provider.name,
                    )
                    self.config_entry.async_start_reauth(self.hass)
                    return
                except (RateLimited, CannotConnect) as err:
                    if not self._import_paused:
                        _LOGGER.warning(
                            "History import paused; it is tried again every hour: %s",
                            err,
                        )
                    self._import_paused = True
                    return
                except ProviderError as err:
                    if series.key not in self._failing_imports:
                        _LOGGER.warning(
                            "Could not import the history of %s; nothing of it was "
                            "stored and it will be tried again within the hour: %s",
                            series.name,
                            err,
                        )
                    self._failing_imports.add(series.key)
                    continue
                if series.key in self._failing_imports:
                    self._failing_imports.discard(series.key)
                    _LOGGER.info("History of %s imports again", series.name)
                if self._import_paused:
                    self._import_paused = False
                    _LOGGER.info("History import resumed")
                self.imports[series.key] = result
                self.import_progress.finished(series.key)
                self.pacing.imported(series.key, now)
            await self.energy_offer.async_update()
            await self._async_show_free_values()

    def _energy_candidates(self) -> Offer:
        """Return what the statistics imported since setup would add to the dashboard."""
        if self.inventory is None:
            return Offer()
        stored = {key: self.imported.pinned.get(key, key) for key in self.imports}
        return plan(self.provider.key, self.inventory, stored)

    async def _async_show_free_values(self) -> None:
        """Show values the import brought along (those a refresh reads for free)."""
        if not self.pacing.active:
            return
        free = [
            channel
            for channel in self._wanted_channels()
            if self.provider.refresh_cost([channel], ()) == 0
        ]
        if not free or self.data is None:
            return
        try:
            latest = await self.provider.async_latest(free, ())
        except ProviderError as err:
            _LOGGER.debug("Values after the import: %s", err)
            return
        if latest.readings:
            self._push_readings(dict(latest.readings))
