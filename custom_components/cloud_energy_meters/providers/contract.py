"""The provider contract, checked once at the seam before the layer above sees a result.

Providers parse what their cloud sends with `parse`; what they return still passes
here (Provider's public methods call these), so a cloud quirk no parser foresaw —
a site listed twice, rows out of order, a NaN that slipped through — is refused or
merged in one place, counted, and logged once per call, never stored and never fatal
for the rest of the answer.
"""

from collections import Counter
from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from datetime import datetime
import logging
import math
from typing import Any

from .model import (
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
from .parse import MAX_MAGNITUDE, ValueRefused

_LOGGER = logging.getLogger(__name__)

TEXTUAL = frozenset({Quantity.TEXT, Quantity.DATE})
"""Quantities whose values are text: every other channel's values are numbers."""

MAX_SITES = 1000
"""Sites an account may list: more is a runaway answer (every site costs requests at
discovery); the rest is left out, with a warning and a repair issue."""

MAX_DEVICES = 1000
"""Devices (meters, inverters …) one site may list: where each costs a request at
discovery (Locus components), more is a runaway answer and the rest is left out."""

MAX_CHANNELS = 10000
"""Channels one discovery may return, for the same reason (each becomes an entity)."""


class Refusals:
    """What one call refused, by endpoint and reason: logged once, when the call ends."""

    def __init__(self, cloud: str) -> None:
        """Count for `cloud` (named in the log line)."""
        self.cloud = cloud
        self.counts: Counter[tuple[str, str]] = Counter()
        self.total = 0
        """Everything refused since the provider was made (for tests and debugging)."""
        self.truncated = False
        """Whether a listing was cut at its limit since the last discovery."""

    def add(self, endpoint: str, reason: str | ValueRefused, count: int = 1) -> None:
        """Count `count` rows (or items) of `endpoint` refused for `reason`."""
        if isinstance(reason, ValueRefused):
            reason = f"{reason.what} unusable"
        self.counts[endpoint, reason] += count
        self.total += count

    def truncate(self, endpoint: str, what: str, count: int) -> None:
        """Count `count` items left out of a listing beyond its limit."""
        self.add(endpoint, f"{what} beyond the limit", count)
        self.truncated = True

    def flush(self) -> None:
        """Log what was refused since the last flush, in one line, and start again."""
        if not self.counts:
            return
        _LOGGER.warning(
            "%s sent data that was left out: %s",
            self.cloud,
            "; ".join(
                f"{count} × {reason} ({endpoint})"
                for (endpoint, reason), count in sorted(self.counts.items())
            ),
        )
        self.counts.clear()


def _unique[T](
    items: Iterable[T], key: Any, refusals: Refusals, endpoint: str, what: str
) -> list[T]:
    """Keep the first item of each key; count the repeats."""
    seen: set[Hashable] = set()
    kept: list[T] = []
    for item in items:
        if (ident := key(item)) in seen:
            refusals.add(endpoint, f"{what} listed twice")
            continue
        seen.add(ident)
        kept.append(item)
    return kept


def sites(found: Sequence[Site], refusals: Refusals) -> tuple[Site, ...]:
    """Return the sites once each, at most MAX_SITES (a cut is noted in `refusals`)."""
    kept = _unique(found, lambda site: site.id, refusals, "sites", "site")
    if len(kept) > MAX_SITES:
        refusals.truncate("sites", "sites", len(kept) - MAX_SITES)
    return tuple(kept[:MAX_SITES])


def inventory(found: Inventory, refusals: Refusals) -> Inventory:
    """Return the inventory with sites, devices and channels once each, bounded."""
    kept_sites = sites(found.sites, refusals)
    site_ids = {site.id for site in kept_sites}
    channels = [
        channel
        for channel in _unique(
            found.channels, lambda ch: ch.key, refusals, "channels", "channel"
        )
        if channel.site_id in site_ids and _fact_ok(channel, refusals)
    ]
    if len(channels) > MAX_CHANNELS:
        refusals.truncate("channels", "channels", len(channels) - MAX_CHANNELS)
    devices: list[Device] = _unique(
        found.devices, lambda device: device.id, refusals, "devices", "device"
    )
    listed = list(dict.fromkeys(found.listed))
    if len(listed) > MAX_SITES:
        refusals.truncate("sites", "listed sites", len(listed) - MAX_SITES)
        listed = listed[:MAX_SITES]
    truncated, refusals.truncated = refusals.truncated, False
    return Inventory(
        account=found.account,
        sites=kept_sites,
        channels=tuple(channels[:MAX_CHANNELS]),
        listed=tuple(listed),
        devices=tuple(devices),
        truncated=found.truncated or truncated,
    )


def _fact_ok(channel: Channel, refusals: Refusals) -> bool:
    if channel.fact is None or isinstance(channel.fact, str) or _finite(channel.fact):
        return True
    refusals.add("facts", f"{channel.name} not a number")
    return False


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_MAGNITUDE
    )


def reading(channel: Channel, found: Reading) -> str | None:
    """Return why a channel's reading breaks the contract; None when it keeps it."""
    for moment in (found.time, found.start):
        if moment is not None and (
            not isinstance(moment, datetime) or moment.tzinfo is None
        ):
            return "a time without zone"
    if channel.quantity in TEXTUAL:
        return None if isinstance(found.value, str) else "text that is not text"
    if not _finite(found.value):
        return "a value that is not a finite number"
    if channel.kind is Kind.INTERVAL and isinstance(found.value, float | int):
        if found.value < 0:
            return "a negative amount"
    return None


def latest(found: Latest, channels: Sequence[Channel], refusals: Refusals) -> Latest:
    """Return the readings of the asked channels that keep the contract."""
    by_key = {channel.key: channel for channel in channels}
    readings: dict[str, Reading] = {}
    for key, value in found.readings.items():
        if (channel := by_key.get(key)) is None:
            refusals.add("latest", "a value of a channel not asked for")
            continue
        if (why := reading(channel, value)) is not None:
            refusals.add("latest", why)
            continue
        readings[key] = value
    alerts = []
    for alert in found.alerts:
        if alert.end is not None and alert.end < alert.start:
            refusals.add("alerts", "an alert that ends before it starts")
            continue
        alerts.append(alert)
    return Latest(
        readings=readings,
        gone=frozenset(key for key in found.gone if key in by_key),
        alerts=tuple(alerts),
    )


async def history(
    channel: Channel, batches: AsyncIterator[list[Interval]], refusals: Refusals
) -> AsyncIterator[list[Interval]]:
    """Yield the batches sorted, unique, non-overlapping, finite (non-negative amounts).

    An interval that starts before the end of one already yielded is refused: the
    importer stores batches as they come and cannot take an hour back. A batch that
    keeps the contract (nearly always) is passed on as it is, uncopied: a year of
    minute data flows through here.
    """
    endpoint = f"history of {channel.name}"
    frontier: datetime | None = None
    async for batch in batches:
        if not batch:
            yield batch
            continue
        if (end := _in_order(batch, frontier)) is not None:
            frontier = end
            yield batch
            # Not held while the cloud's next batch is read: one batch in memory.
            del batch
            continue
        kept: list[Interval] = []
        for interval in sorted(
            (item for item in batch if _aware(item, refusals, endpoint)),
            key=lambda item: item.start,
        ):
            why = _interval(interval)
            if why is None and frontier is not None and interval.start < frontier:
                why = "intervals overlapping"
            if why is not None:
                refusals.add(endpoint, why)
                continue
            kept.append(interval)
            frontier = interval.end
        yield kept  # even empty: the importer counts a batch as a span done
        del batch, kept


def _in_order(batch: list[Interval], frontier: datetime | None) -> datetime | None:
    """Return a non-empty batch's end when it keeps the contract as it is; else None."""
    end = frontier
    try:
        for interval in batch:
            value = interval.value
            if (
                (type(value) is not float and type(value) is not int)
                # also false for NaN: every comparison with it is
                or not 0 <= value <= MAX_MAGNITUDE
                or not interval.start < interval.end
                or (end is not None and interval.start < end)
            ):
                return None
            end = interval.end
    except TypeError:  # a time without zone met one with
        return None
    if batch[0].start.tzinfo is None:
        return None
    return end


def _aware(interval: Interval, refusals: Refusals, endpoint: str) -> bool:
    if isinstance(interval.start, datetime) and interval.start.tzinfo is not None:
        if isinstance(interval.end, datetime) and interval.end.tzinfo is not None:
            return True
    refusals.add(endpoint, "a time without zone")
    return False


def _interval(interval: Interval) -> str | None:
    if not _finite(interval.value):
        return "a value that is not a finite number"
    if interval.value < 0:
        return "a negative amount"
    if not interval.start < interval.end:
        return "an interval that ends before it starts"
    return None
