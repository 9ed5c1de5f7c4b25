"""The provider contract, checked at the seam: what the layer above gets is sound.

A provider written here returns what a careless cloud module could (sites twice,
NaN, negative amounts, intervals out of order); the public methods every provider
inherits hand the layer above only what keeps the contract, count the rest and log
it once per call.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import logging
from typing import Any, override

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers import AccountState, Provider
from custom_components.cloud_energy_meters.providers.contract import (
    MAX_CHANNELS,
    MAX_SITES,
)
from custom_components.cloud_energy_meters.providers.form import Form
from custom_components.cloud_energy_meters.providers.model import (
    Account,
    Channel,
    Interval,
    Inventory,
    Kind,
    Latest,
    Quantity,
    Reading,
    Site,
)
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy

T0 = datetime(2026, 11, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
ACCOUNT = Account(id="a", name="A")


def channel(
    key: str, kind: Kind = Kind.INTERVAL, quantity: Quantity = Quantity.ENERGY
) -> Channel:
    """Return a channel of site s1."""
    return Channel(
        key=key,
        site_id="s1",
        name=key,
        label=None,
        quantity=quantity,
        kind=kind,
        unit="",
    )


ENERGY = channel("energy")
POWER = channel("power", Kind.INSTANT, Quantity.POWER)
STATUS = channel("status", Kind.INSTANT, Quantity.TEXT)


class Careless(Provider):
    """A provider that returns whatever it is told to."""

    key = "careless"
    name = "Careless"
    default_url = "http://127.0.0.1"
    policy = RatePolicy()
    form = Form(fields=())

    def __init__(self, session: ClientSession) -> None:
        """Answer nothing until told."""
        super().__init__(
            session,
            api_url=self.default_url,
            credentials={},
            state=AccountState.for_policy(self.policy),
        )
        self.sites: list[Site] = []
        self.inventory = Inventory(account=ACCOUNT, sites=(), channels=())
        self.latest = Latest(readings={})
        self.batches: list[list[Interval]] = []
        self.asked: list[Any] = []

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Any) -> str:
        return cls.key

    @override
    async def async_login(self) -> Account:
        return ACCOUNT

    @override
    async def _list_sites(self) -> Sequence[Site]:
        return self.sites

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        self.asked.append(site_ids)
        return self.inventory

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str]
    ) -> Latest:
        self.asked.append(sites)
        return self.latest

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        for batch in self.batches:
            yield batch

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        return 0


@pytest.fixture
async def careless() -> AsyncIterator[Careless]:
    """Return a careless provider (it sends no request)."""
    async with ClientSession() as session:
        yield Careless(session)


def left_out(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the 'left out' warnings logged."""
    return [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]


async def test_sites_once_each_and_bounded(
    careless: Careless, caplog: pytest.LogCaptureFixture
) -> None:
    """A site listed twice is listed once; beyond MAX_SITES the list is cut, logged once."""
    careless.sites = [Site(id="s1", name="One"), Site(id="s1", name="Again")]
    assert await careless.async_list_sites() == (Site(id="s1", name="One"),)
    careless.sites = [Site(id=str(n), name=str(n)) for n in range(MAX_SITES + 5)]
    assert len(await careless.async_list_sites()) == MAX_SITES
    assert left_out(caplog) == [
        "Careless sent data that was left out: 1 × site listed twice (sites)",
        "Careless sent data that was left out: 5 × sites beyond the limit (sites)",
    ]


async def test_discovery_asks_each_site_once(careless: Careless) -> None:
    """Repeated site ids reach the provider once each: no request per repetition."""
    await careless.async_discover(["s1"] * 5000 + ["s2"])
    assert careless.asked == [["s1", "s2"]]


async def test_inventory_unique_and_flagged_when_cut(careless: Careless) -> None:
    """Sites and channels once each, none of an unlisted site; a cut inventory says so.

    The layer above raises a repair issue for an inventory cut at its limit.
    """
    site = Site(id="s1", name="One")
    careless.inventory = Inventory(
        account=ACCOUNT,
        sites=(site, site),
        channels=(ENERGY, ENERGY, replace(POWER, site_id="s9")),
        listed=("s1", "s1"),
    )
    found = await careless.async_discover(["s1"])
    assert (found.sites, found.channels, found.listed, found.truncated) == (
        (site,),
        (ENERGY,),
        ("s1",),
        False,
    )
    careless.inventory = Inventory(
        account=ACCOUNT,
        sites=(site,),
        channels=tuple(channel(f"c{n}") for n in range(MAX_CHANNELS + 1)),
    )
    found = await careless.async_discover(["s1"])
    assert len(found.channels) == MAX_CHANNELS
    assert found.truncated
    careless.inventory = Inventory(account=ACCOUNT, sites=(site,), channels=())
    assert not (await careless.async_discover(["s1"])).truncated


async def test_latest_values_keep_the_contract(
    careless: Careless, caplog: pytest.LogCaptureFixture
) -> None:
    """Values that break the contract are left out, counted and logged once.

    NaN, infinities, negative amounts, text for numbers (and the reverse), values of
    channels not asked for, times without zone.
    """
    careless.latest = Latest(
        readings={
            "energy": Reading(value=-0.5, time=T0),
            "power": Reading(value=float("nan"), time=T0),
            "status": Reading(value=3.0, time=T0),
            "other": Reading(value=1.0, time=T0),
        },
        gone=frozenset({"power", "stranger"}),
    )
    found = await careless.async_latest([ENERGY, POWER, STATUS])
    assert found.readings == {}
    assert found.gone == frozenset({"power"})
    assert careless.refusals.total == 4
    assert len(left_out(caplog)) == 1
    careless.latest = Latest(
        readings={
            "energy": Reading(value=0.5, time=T0, start=T0 - Q),
            "power": Reading(value=float("inf")),
            "status": Reading(value="running", time=T0.replace(tzinfo=None)),
        }
    )
    found = await careless.async_latest([ENERGY, POWER, STATUS])
    assert found.readings == {"energy": Reading(value=0.5, time=T0, start=T0 - Q)}
    careless.latest = Latest(readings={"status": Reading(value="running", time=T0)})
    assert (await careless.async_latest([STATUS])).readings["status"].value == "running"


async def test_latest_asks_each_site_once(careless: Careless) -> None:
    """Alerts of a site listed many times are asked once."""
    await careless.async_latest([], ["s1"] * 1000)
    assert careless.asked == [["s1"]]


async def _history(careless: Careless) -> list[list[Interval]]:
    return [batch async for batch in careless.async_history(ENERGY, T0, T0 + Q * 100)]


async def test_history_sorted_unique_non_overlapping(
    careless: Careless, caplog: pytest.LogCaptureFixture
) -> None:
    """Batches come sorted; what breaks the contract is left out, logged once.

    Duplicates, overlaps, NaN, negative amounts and intervals that end before they
    start.
    """
    good = [Interval(T0 + n * Q, T0 + (n + 1) * Q, 1.0) for n in range(6)]
    careless.batches = [
        [good[1], good[0], Interval(T0, T0 + Q, 2.0)],  # unsorted, a duplicate
        [
            good[2],
            Interval(good[2].start + Q / 3, good[2].end, 1.0),  # overlaps good[2]
            Interval(good[3].start, good[3].end, float("nan")),
            Interval(good[3].start, good[3].end, -1.0),
            Interval(good[3].end, good[3].start, 1.0),
            good[3],
        ],
        [],
        [good[4], Interval(good[0].start, good[0].end, 1.0), good[5]],  # back in time
    ]
    batches = await _history(careless)
    assert batches == [[good[0], good[1]], [good[2], good[3]], [], [good[4], good[5]]]
    assert careless.refusals.total == 6
    (warning,) = left_out(caplog)
    assert "intervals overlapping (history of energy)" in warning


async def test_history_in_order_is_passed_on_uncopied(careless: Careless) -> None:
    """A batch that keeps the contract is the provider's own list (no copy per batch)."""
    batch = [Interval(T0 + n * Q, T0 + (n + 1) * Q, 0.25) for n in range(4)]
    careless.batches = [batch]
    (passed,) = await _history(careless)
    assert passed is batch
    assert careless.refusals.total == 0


async def test_history_refuses_naive_times(careless: Careless) -> None:
    """An interval without a time zone is left out, even among aware ones."""
    naive = T0.replace(tzinfo=None)
    careless.batches = [
        [Interval(T0, T0 + Q, 1.0), Interval(naive + Q, naive + 2 * Q, 1.0)],
        [Interval(naive, naive + Q, 1.0)],
    ]
    assert await _history(careless) == [[Interval(T0, T0 + Q, 1.0)], []]
    assert careless.refusals.total == 2


async def test_refusals_are_logged_once_per_call(
    careless: Careless, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call logs its own refusals in one line; a clean call logs nothing."""
    careless.latest = Latest(readings={"power": Reading(value=float("nan"))})
    with caplog.at_level(logging.WARNING):
        await careless.async_latest([POWER])
        await careless.async_latest([POWER])
        careless.latest = Latest(readings={})
        await careless.async_latest([POWER])
    assert (
        left_out(caplog)
        == [
            "Careless sent data that was left out: 1 × a value that is not a finite "
            "number (latest)"
        ]
        * 2
    )


async def test_facts_are_finite_and_listed_ids_bounded(careless: Careless) -> None:
    """A fact that is no finite number is left out; a runaway list of ids is cut."""
    site = Site(id="s1", name="One")
    size = replace(POWER, key="size", kind=Kind.FACT, fact=float("inf"))
    installer = replace(STATUS, key="installer", kind=Kind.FACT, fact="Sun & Co")
    careless.inventory = Inventory(
        account=ACCOUNT,
        sites=(site,),
        channels=(size, installer),
        listed=tuple(str(n) for n in range(MAX_SITES + 1)),
    )
    found = await careless.async_discover(["s1"])
    assert found.channels == (installer,)
    assert len(found.listed) == MAX_SITES
    assert found.truncated
    assert careless.refusals.total == 2
