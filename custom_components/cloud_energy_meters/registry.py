"""Devices and entities kept in step with what the cloud lists.

Each discovery registers the sites and their equipment as devices, removes what is
gone (after two discoveries in a row miss it, so one incomplete answer never costs
people their customisations) and raises a repair issue while chosen sites are gone
from the account.
"""

from dataclasses import replace
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)

from .const import DOMAIN
from .ids import device_identifier, expected_unique_ids
from .providers import Provider
from .providers.contract import MAX_CHANNELS, MAX_SITES
from .providers.model import Inventory

_LOGGER = logging.getLogger(__name__)


class RegistryUpkeep:
    """Register, prune and report the devices and entities of one entry."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, provider: type[Provider]
    ) -> None:
        """Bind the entry and what its cloud is."""
        self.hass = hass
        self.entry = entry
        self.provider = provider
        self._missing: set[str] = set()
        """Entities and devices the previous discovery did not list."""

    def update(self, inventory: Inventory, chosen: list[str]) -> None:
        """Follow a discovery: report missing sites and runaway lists, register, prune."""
        self.report_missing_sites(inventory, chosen)
        self.report_truncated(inventory)
        self.register_devices(inventory)
        self.prune(inventory, chosen)

    def register_devices(self, inventory: Inventory) -> None:
        """Register each site, then its equipment linked to its parent device.

        Entities only name their device: what a device is comes from here, once.
        """
        registry = dr.async_get(self.hass)
        entry_id = self.entry.entry_id
        ids: dict[str, str] = {}
        for site in inventory.sites:
            ids[site.id] = registry.async_get_or_create(
                config_entry_id=entry_id,
                identifiers={device_identifier(site.id)},
                name=site.name,
                manufacturer=self.provider.name,
                model=site.model,
                serial_number=site.reference,
                configuration_url=site.configuration_url,
            ).id
        site_names = {site.id: site.name for site in inventory.sites}
        pending = list(inventory.devices)
        while pending:
            ready = [d for d in pending if (d.parent_id or d.site_id) in ids]
            if not ready:  # a parent that is not listed: link to the site instead
                ready = [replace(pending[0], parent_id=None)]
                pending[0] = ready[0]
            for device in ready:
                pending.remove(device)
                ids[device.id] = registry.async_get_or_create(
                    config_entry_id=entry_id,
                    config_subentry_id=device.group
                    if device.group in self.entry.subentries
                    else None,
                    identifiers={device_identifier(device.id)},
                    # Equipment names repeat from site to site ("PV Meter"): the
                    # site's name makes devices and entity ids tell them apart.
                    # Names the user gave are kept as they are.
                    name=device.name
                    if self.provider.named_by_user
                    else f"{site_names[device.site_id]} {device.name}",
                    manufacturer=device.manufacturer or self.provider.name,
                    model=device.model,
                    serial_number=device.serial_number,
                    via_device_id=ids[device.parent_id or device.site_id],
                ).id

    def report_missing_sites(self, inventory: Inventory, chosen: list[str]) -> None:
        """Raise a repair issue while chosen sites are no longer in the account."""
        present = {site.id for site in inventory.sites}
        missing = [site_id for site_id in chosen if site_id not in present]
        self.issue("sites_missing", {"sites": ", ".join(missing)} if missing else None)

    def report_truncated(self, inventory: Inventory) -> None:
        """Raise a repair issue while the cloud lists more than one entry may hold."""
        limits = {"sites": str(MAX_SITES), "channels": str(MAX_CHANNELS)}
        self.issue("listing_truncated", limits if inventory.truncated else None)

    def issue(self, key: str, placeholders: dict[str, str] | None) -> None:
        """Raise the entry's repair issue `key` with these placeholders; None: clear it."""
        issue_id = f"{key}_{self.entry.entry_id}"
        if placeholders is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders={"entry": self.entry.title, **placeholders},
        )

    def prune(self, inventory: Inventory, chosen: list[str]) -> None:
        """Remove entities and devices that are gone; keep them through one glitch.

        Whatever belongs to a site the user no longer chose goes at once. What the
        cloud stopped listing goes when two discoveries in a row miss it.
        """
        entry_id = self.entry.entry_id
        keep = expected_unique_ids(self.provider.key, inventory)
        listed = {device_identifier(site.id) for site in inventory.sites} | {
            device_identifier(device.id) for device in inventory.devices
        }
        entities = er.async_get(self.hass)
        devices = dr.async_get(self.hass)

        def declined(device_id: str | None) -> bool:
            """Tell whether a device belongs to a site the user no longer chose."""
            for _ in range(10):  # follow the links up to the site's device
                device = devices.async_get(device_id) if device_id else None
                if not isinstance(device, dr.DeviceEntry):
                    return False
                if device.via_device_id is None:
                    return not {ident for _, ident in device.identifiers} & set(chosen)
                device_id = device.via_device_id
            return False

        missing: set[str] = set()
        for entity in er.async_entries_for_config_entry(entities, entry_id):
            if entity.unique_id in keep:
                continue
            if declined(entity.device_id) or entity.unique_id in self._missing:
                _LOGGER.debug("Removing %s: its channel is gone", entity.entity_id)
                entities.async_remove(entity.entity_id)
            else:
                missing.add(entity.unique_id)
        stale = [
            device
            for device in dr.async_entries_for_config_entry(devices, entry_id)
            if not device.identifiers & listed
        ]
        for device in stale:
            if declined(device.id) or device.id in self._missing:
                missing.discard(device.id)
                _LOGGER.debug("Removing device %s: it is gone", device.name)
                devices.async_remove_device(device.id)
            else:
                missing.add(device.id)
        self._missing = missing
