"""Offer an entry's statistics to the Energy dashboard, through a repair issue.

Once an entry's history has been imported, a fixable repair issue offers to add its
statistics to Home Assistant's own energy preferences (Settings → Dashboards →
Energy), where the user sees and edits them. The issue goes when nothing is left to
add; what the user accepted is remembered and never offered again.

Which statistic goes where follows the channel's role and quantity:
- grid import and export make a grid connection (one per site, or per device);
  solar: electricity production; a battery: charging and discharging of the same
  device (or site), both or none; gas and water: their consumption; individual
  devices: electricity consumption of meters.
- Never counted twice: where a site has a site total for a part (grid import,
  production, water …), that total is taken and its meters are not (they are in it);
  a meter under another meter (an inverter under its PV meter) is left out when its
  parent is taken; a site total is never an individual device (it is the whole
  site, and the grid and solar already make it up).
- Never overwritten: a statistic already anywhere in the preferences is left where
  the user put it. Nothing of the user's changes, except one case: a grid
  connection holding one of our meters with the other side empty gets that
  meter's partner (our export beside our import), rather than a second connection.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, cast

from homeassistant.components.energy.data import (
    BatterySourceType,
    DeviceConsumption,
    EnergyPreferences,
    GasSourceType,
    GridSourceType,
    SolarSourceType,
    SourceType,
    WaterSourceType,
)
from homeassistant.util.unit_conversion import EnergyConverter, VolumeConverter

from .providers.model import Channel, Inventory, Quantity, Role
from .statistics import series_for

ISSUE = "energy_offer"
NOTHING = "—"
"""What the offer's description shows for a part with nothing to add."""

_ENERGY_ROLES = {
    Role.GRID_IMPORT: "grid_import",
    Role.GRID_EXPORT: "grid_export",
    Role.PRODUCTION: "solar",
    Role.BATTERY_CHARGE: "battery_in",
    Role.BATTERY_DISCHARGE: "battery_out",
    Role.CONSUMPTION: "device",
}
_VOLUME_UNITS = VolumeConverter.VALID_UNITS
_ENERGY_UNITS = EnergyConverter.VALID_UNITS


def issue_id(entry_id: str) -> str:
    """Return the id of an entry's offer."""
    return f"{ISSUE}_{entry_id}"


def _part(channel: Channel) -> str | None:
    """Return the part of the Energy dashboard a channel's statistic belongs to."""
    if channel.quantity is Quantity.ENERGY and channel.unit in _ENERGY_UNITS:
        return _ENERGY_ROLES.get(channel.role)
    if channel.role not in (Role.CONSUMPTION, Role.MEASUREMENT):
        return None  # a gas or water meter only ever counts what the site used
    if channel.quantity is Quantity.WATER and channel.unit in _VOLUME_UNITS:
        return "water"
    if channel.quantity is Quantity.GAS and channel.unit in (
        _VOLUME_UNITS | _ENERGY_UNITS
    ):
        return "gas"
    return None


def _site_total(channel: Channel) -> bool:
    """Tell whether a channel is a site's total (its label says so: `site_…`)."""
    return channel.label is not None and channel.label.startswith("site_")


def _under(
    parents: Mapping[str, str | None],
    device_id: str | None,
    taken: Collection[str | None],
) -> bool:
    """Tell whether a device hangs (at any depth) under one of the `taken` devices."""
    for _ in range(10):  # up the links to the site
        device_id = parents.get(device_id) if device_id else None
        if device_id is None:
            return False
        if device_id in taken:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Offer:
    """What the Energy dashboard would get: statistic ids, by part."""

    grid: tuple[tuple[str | None, str | None], ...] = ()
    """Grid connections: (import, export), either may be missing."""
    solar: tuple[str, ...] = ()
    battery: tuple[tuple[str, str], ...] = ()
    """Batteries: (into the battery, out of it)."""
    gas: tuple[str, ...] = ()
    water: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict, compare=False)
    """What each statistic is called (the Energy dashboard shows the same)."""

    @property
    def ids(self) -> set[str]:
        """Return every statistic id of the offer."""
        ids = {i for pair in (*self.grid, *self.battery) for i in pair if i}
        return ids | {*self.solar, *self.gas, *self.water, *self.devices}

    def without(self, known: Collection[str]) -> Offer:
        """Leave out statistics already known (in the preferences, or accepted).

        A battery goes as a pair or not at all; a grid connection keeps its other side.
        """
        grid = tuple(
            pair
            for a, b in self.grid
            if any(
                pair := (a if a not in known else None, b if b not in known else None)
            )
        )
        return Offer(
            grid=grid,
            solar=tuple(i for i in self.solar if i not in known),
            battery=tuple(p for p in self.battery if not set(p) & set(known)),
            gas=tuple(i for i in self.gas if i not in known),
            water=tuple(i for i in self.water if i not in known),
            devices=tuple(i for i in self.devices if i not in known),
            names=self.names,
        )

    def placeholders(self) -> dict[str, str]:
        """Return the offer's parts as text, for the fix flow's description."""

        def names(ids: Iterable[str | None]) -> str:
            return " / ".join(self.names.get(i, i) if i else NOTHING for i in ids)

        def listed(items: Iterable[Iterable[str | None]]) -> str:
            return ", ".join(names(item) for item in items) or NOTHING

        return {
            "grid": listed(self.grid),
            "solar": listed((i,) for i in self.solar),
            "battery": listed(self.battery),
            "gas": listed((i,) for i in self.gas),
            "water": listed((i,) for i in self.water),
            "devices": listed((i,) for i in self.devices),
        }


def plan(provider_key: str, inventory: Inventory, imported: Collection[str]) -> Offer:
    """Return what an inventory's imported statistics would add (see module doc)."""
    parents = {device.id: device.parent_id for device in inventory.devices}
    names: dict[str, str] = {}
    chosen: dict[tuple[str, str], list[tuple[Channel, str]]] = {}
    for channel in inventory.channels:
        site = inventory.site(channel.site_id)
        if not (channel.history and channel.statistic and site):
            continue
        series = series_for(provider_key, site, channel)
        statistic_id = series.statistic_id
        names[statistic_id] = series.name
        if statistic_id in imported and (part := _part(channel)):
            chosen.setdefault((channel.site_id, part), []).append(
                (channel, statistic_id)
            )
    picked: dict[str, list[tuple[Channel, str]]] = {}
    for (_, part), found in chosen.items():
        totals = [item for item in found if _site_total(item[0])]
        if part == "device":
            found = [item for item in found if not _site_total(item[0])]
        elif totals:
            found = totals
        taken = {channel.device_id for channel, _ in found}
        picked.setdefault(part, []).extend(
            item for item in found if not _under(parents, item[0].device_id, taken)
        )

    def ids(part: str) -> tuple[str, ...]:
        return tuple(statistic_id for _, statistic_id in picked.get(part, []))

    def pairs(first: str, second: str) -> list[tuple[str | None, str | None]]:
        """Pair two parts by site and device, in the order the cloud listed them."""
        groups: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}
        for index, part in enumerate((first, second)):
            for channel, statistic_id in picked.get(part, []):
                key = (channel.site_id, channel.device_id)
                groups.setdefault(key, ([], []))[index].append(statistic_id)
        return [
            pair
            for a, b in groups.values()
            for pair in zip_longest(a, b, fillvalue=None)
        ]

    return Offer(
        grid=tuple(pairs("grid_import", "grid_export")),
        solar=ids("solar"),
        battery=tuple(
            (into, out)
            for into, out in pairs("battery_in", "battery_out")
            if into and out  # the dashboard needs both sides of a battery
        ),
        gas=ids("gas"),
        water=ids("water"),
        devices=ids("device"),
        names=names,
    )


def statistics_in(prefs: Mapping[str, Any] | Iterable[Any] | None) -> set[str]:
    """Return every statistic id the energy preferences name, wherever they do.

    Every key of a source or device that names a statistic starts with `stat_` (or
    is `included_in_stat`), in every format so far (2026.10's and 2026.11's).
    """
    found: set[str] = set()
    if isinstance(prefs, Mapping):
        for key, value in prefs.items():
            if isinstance(value, str) and (
                key.startswith("stat_") or key == "included_in_stat"
            ):
                found.add(value)
            else:
                found |= statistics_in(value)
    elif isinstance(prefs, list):
        for item in prefs:
            found |= statistics_in(item)
    return found


def _grid(stat_from: str | None, stat_to: str | None) -> GridSourceType:
    return {
        "type": "grid",
        "stat_energy_from": stat_from,
        "stat_energy_to": stat_to,
        "stat_cost": None,
        "entity_energy_price": None,
        "number_energy_price": None,
        "stat_compensation": None,
        "entity_energy_price_export": None,
        "number_energy_price_export": None,
        "cost_adjustment_day": 0.0,
    }


def merged(prefs: EnergyPreferences, full: Offer, offer: Offer) -> EnergyPreferences:
    """Return the preferences with the offer added (`full`: before `without`)."""
    # Copies: the manager's own data changes only through its update.
    sources = [cast("SourceType", dict(s)) for s in prefs["energy_sources"]]
    partner = {
        side: other
        for a, b in full.grid
        for side, other in ((a, b), (b, a))
        if side and other
    }
    for stat_from, stat_to in offer.grid:
        mine = stat_from or stat_to
        if stat_from and stat_to or mine not in partner:
            sources.append(_grid(stat_from, stat_to))
            continue
        key, other = (
            ("stat_energy_from", "stat_energy_to")
            if stat_from
            else ("stat_energy_to", "stat_energy_from")
        )
        holder = next(
            (
                source
                for source in sources
                if source["type"] == "grid"
                and source.get(other) == partner[mine]
                and not source.get(key)
            ),
            None,
        )
        if holder is None:
            sources.append(_grid(stat_from, stat_to))
        else:  # the connection holding its other side: completed, not doubled
            cast("dict[str, Any]", holder)[key] = mine
    sources.extend(
        SolarSourceType(
            type="solar", stat_energy_from=i, config_entry_solar_forecast=None
        )
        for i in offer.solar
    )
    sources.extend(
        BatterySourceType(type="battery", stat_energy_from=out, stat_energy_to=into)
        for into, out in offer.battery
    )
    sources.extend(
        GasSourceType(
            type="gas",
            stat_energy_from=i,
            stat_cost=None,
            entity_energy_price=None,
            number_energy_price=None,
        )
        for i in offer.gas
    )
    sources.extend(
        WaterSourceType(
            type="water",
            stat_energy_from=i,
            stat_cost=None,
            entity_energy_price=None,
            number_energy_price=None,
        )
        for i in offer.water
    )
    return {
        **prefs,
        "energy_sources": sources,
        "device_consumption": [
            *prefs["device_consumption"],
            *(DeviceConsumption(stat_consumption=i) for i in offer.devices),
        ],
    }
