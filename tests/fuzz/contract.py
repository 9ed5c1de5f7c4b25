"""The provider contract, checked from the outside: what a call may hand the layer above.

Written from the contract (providers/provider.py, providers/model.py), not from the
product's own validation: the product must never import this module, and this module
imports only the product's data types, never its checks.

- A reading's value is a finite float, or a str for a text channel (text, date).
- An amount cannot be negative: the latest value of an INTERVAL channel, and every
  history interval (the history of a register is the differences of its readings, an
  amount too).
- Intervals are aware UTC, start < end, finite, start in the span asked, sorted and
  unique by start and non-overlapping, across batches too.
- Site ids, channel keys and device ids are unique; names, ids, serials and other text
  fields are str; a channel's site is one of the inventory's.
- A RateLimited asks for a finite wait of at most an hour (never "forever").
- Latest.readings and Latest.gone name channels that were asked for.
"""

from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
import math
from typing import Any

from custom_components.cloud_energy_meters.providers.errors import RateLimited
from custom_components.cloud_energy_meters.providers.model import (
    Account,
    Alert,
    Channel,
    Device,
    Interval,
    Inventory,
    Kind,
    Latest,
    Quantity,
    Reading,
    Site,
)

MAX_RETRY_AFTER = 3600.0
"""The longest wait a cloud may impose through one Retry-After (seconds)."""

TEXT_QUANTITIES = frozenset({Quantity.TEXT, Quantity.DATE})
"""Channels whose readings are text."""


class ContractViolation(AssertionError):
    """A call returned something the contract forbids; `rule` names which."""

    def __init__(self, rule: str, detail: str) -> None:
        """Keep the rule (a failure class) apart from the detail of this example."""
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


def _require(ok: bool, rule: str, detail: str) -> None:
    if not ok:
        raise ContractViolation(rule, detail)


def _text(value: Any, what: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    _require(isinstance(value, str), f"{what} is not a str", repr(value)[:80])


def _aware(moment: Any, what: str) -> None:
    _require(isinstance(moment, datetime), f"{what} is not a datetime", repr(moment))
    _require(
        moment.tzinfo is not None and moment.utcoffset() == timedelta(0),
        f"{what} is not aware UTC",
        repr(moment),
    )


def _finite(value: Any, what: str) -> None:
    _require(
        isinstance(value, float | int) and not isinstance(value, bool),
        f"{what} is not a number",
        repr(value)[:80],
    )
    _require(math.isfinite(value), f"{what} is not finite", repr(value))


def _unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        _require(value not in seen, f"duplicate {what}", repr(value)[:80])
        seen.add(value)


def check_account(account: Any) -> None:
    """Check an account: a str id and name."""
    _require(isinstance(account, Account), "login returned no Account", repr(account))
    _text(account.id, "account id")
    _text(account.name, "account name")


def check_site(site: Any) -> None:
    """Check a site: id and name str, its optional fields str or None."""
    _require(isinstance(site, Site), "a site is not a Site", repr(site)[:80])
    _text(site.id, "site id")
    _text(site.name, "site name")
    for name in ("timezone", "address", "reference", "model", "configuration_url"):
        _text(getattr(site, name), f"site {name}", optional=True)


def check_sites(sites: Any) -> None:
    """Check sites: each valid, ids unique."""
    _require(isinstance(sites, tuple), "sites are not a tuple", type(sites).__name__)
    for site in sites:
        check_site(site)
    _unique((site.id for site in sites), "site id")


def check_device(device: Device) -> None:
    """Check a device: ids and name str, its optional fields str or None."""
    _text(device.id, "device id")
    _text(device.site_id, "device site id")
    _text(device.name, "device name")
    for name in ("parent_id", "manufacturer", "model", "serial_number", "kind"):
        _text(getattr(device, name), f"device {name}", optional=True)


def check_channel(channel: Channel, site_ids: set[str]) -> None:
    """Check a channel: text str, fact finite, site one of the inventory's."""
    for name in ("key", "site_id", "name", "unit"):
        _text(getattr(channel, name), f"channel {name}")
    for name in ("source", "source_id", "statistic", "device_id"):
        _text(getattr(channel, name), f"channel {name}", optional=True)
    _require(channel.site_id in site_ids, "channel of an unknown site", channel.key)
    _require(isinstance(channel.quantity, Quantity), "channel quantity", channel.key)
    _require(isinstance(channel.kind, Kind), "channel kind", channel.key)
    if isinstance(channel.fact, float | int):
        _finite(channel.fact, "fact value")
    else:
        _text(channel.fact, "fact value", optional=True)
    for key, value in channel.attributes.items():
        _text(key, "attribute name")
        _require(
            isinstance(value, str | int | float | bool),
            "attribute is not a scalar",
            repr(value)[:80],
        )
        if isinstance(value, float):
            _finite(value, "attribute value")


def check_inventory(inventory: Any, asked: Sequence[str]) -> None:
    """Check an inventory: sites asked and unique, channels and devices unique."""
    _require(isinstance(inventory, Inventory), "discover returned no Inventory", "")
    check_account(inventory.account)
    check_sites(inventory.sites)
    for site in inventory.sites:
        _require(site.id in asked, "a site that was not asked for", site.id)
    site_ids = {site.id for site in inventory.sites}
    for listed in inventory.listed:
        _text(listed, "listed site id")
    _unique(inventory.listed, "listed site id")
    for channel in inventory.channels:
        check_channel(channel, site_ids)
    _unique((channel.key for channel in inventory.channels), "channel key")
    for device in inventory.devices:
        check_device(device)
    _unique((device.id for device in inventory.devices), "device id")


def check_reading(reading: Any, channel: Channel) -> None:
    """Check a reading: finite (text for text), amounts not negative, aware."""
    _require(isinstance(reading, Reading), "a reading is not a Reading", channel.key)
    if channel.quantity in TEXT_QUANTITIES:
        _require(
            isinstance(reading.value, str | float | int),
            "text reading",
            repr(reading.value)[:80],
        )
        if not isinstance(reading.value, str):
            _finite(reading.value, "reading value")
    else:
        _finite(reading.value, "reading value")
        _require(
            isinstance(reading.value, float), "reading is not a float", channel.key
        )
        if channel.kind is Kind.INTERVAL:
            _require(reading.value >= 0, "negative amount in latest", channel.key)
    if reading.time is not None:
        _aware(reading.time, "reading time")
    if reading.start is not None:
        _aware(reading.start, "reading start")
        _require(
            reading.time is not None and reading.start < reading.time,
            "reading start not before its time",
            channel.key,
        )


def check_alert(alert: Any) -> None:
    """Check an alert: ids and text str, times aware, end after start."""
    _require(isinstance(alert, Alert), "an alert is not an Alert", repr(alert)[:80])
    for name in ("id", "site_id", "device_id", "device_name", "source_id", "type"):
        _text(getattr(alert, name), f"alert {name}")
    _text(alert.priority, "alert priority")
    for name in ("description", "details"):
        _text(getattr(alert, name), f"alert {name}", optional=True)
    _aware(alert.start, "alert start")
    if alert.end is not None:
        _aware(alert.end, "alert end")
        _require(alert.start <= alert.end, "alert ends before it starts", alert.id)


def check_latest(latest: Any, channels: Sequence[Channel]) -> None:
    """Check latest values: of channels asked for, each reading valid."""
    _require(isinstance(latest, Latest), "latest returned no Latest", "")
    by_key = {channel.key: channel for channel in channels}
    for key, reading in latest.readings.items():
        _require(key in by_key, "a reading of a channel not asked for", str(key))
        check_reading(reading, by_key[key])
    for key in latest.gone:
        _require(key in by_key, "gone names a channel not asked for", str(key))
    # Alerts are keyed by id above this layer: a repeated one is harmless.
    for alert in latest.alerts:
        check_alert(alert)


def check_history(
    batches: Any, channel: Channel, start: datetime, end: datetime
) -> None:
    """Check history: aware, finite, not negative, in the span, sorted, apart."""
    previous: Interval | None = None
    for batch in batches:
        _require(isinstance(batch, list), "a batch is not a list", type(batch).__name__)
        for interval in batch:
            _require(isinstance(interval, Interval), "not an Interval", repr(interval))
            _aware(interval.start, "interval start")
            _aware(interval.end, "interval end")
            _require(interval.start < interval.end, "empty interval", repr(interval))
            _finite(interval.value, "interval value")
            _require(interval.value >= 0, "negative amount in history", repr(interval))
            _require(
                start <= interval.start < end,
                "interval outside the span asked",
                repr(interval),
            )
            if previous is not None:
                _require(
                    previous.start != interval.start,
                    "duplicate interval start",
                    repr(interval),
                )
                _require(
                    previous.start < interval.start,
                    "intervals out of time order",
                    f"{previous.start} then {interval.start}",
                )
                _require(
                    previous.end <= interval.start,
                    "overlapping intervals",
                    f"{previous} and {interval}",
                )
            previous = interval


def check_rate_limited(error: BaseException) -> None:
    """Check that a RateLimited asks a finite wait of at most an hour."""
    if isinstance(error, RateLimited):
        wait = error.retry_after
        _require(
            isinstance(wait, float | int) and math.isfinite(wait),
            "Retry-After not finite",
            repr(wait),
        )
        _require(0 <= wait <= MAX_RETRY_AFTER, "Retry-After over an hour", repr(wait))


def check_text_fields(item: Any, what: str) -> None:
    """Check that every str field of a result dataclass holds a str."""
    if is_dataclass(item) and not isinstance(item, type):
        for spec in fields(item):
            if spec.type in ("str", str):
                _text(getattr(item, spec.name), f"{what} {spec.name}")
