"""Which provider call reads which request path, per cloud: the fuzz harness's table.

One `Cloud` per provider key, each a list of `Endpoint`s: a name, the regular
expression of the request paths whose answers get the mutation (every other request
of the call is answered normally), the call, and the oracle of what it returns. A new
cloud (Copper Labs, FlexMeasures) plugs in with one entry in CLOUDS: its small demo
sites and its endpoints; the harness, the test and scripts/fuzz pick it up.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Inventory,
    Kind,
)
from custom_components.cloud_energy_meters.providers.provider import Provider
from tests.simulator import flexmeasures_data as fm_data

from . import contract


@dataclass(frozen=True, slots=True)
class Context:
    """What one example's call works with: a fresh provider and the normal inventory."""

    provider: Provider
    inventory: Inventory
    sites: tuple[str, ...]
    start: datetime
    end: datetime


type Call = Callable[[Context], Awaitable[Any]]
type Check = Callable[[Any, Context], None]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of a cloud as one call exercises it."""

    name: str
    path: str
    """Regular expression searched in the request path: these answers are mutated."""
    call: Call
    check: Check
    body: str = "json"
    """What the answer is: `json` or `csv` (which edits the mutations draw)."""


@dataclass(frozen=True, slots=True)
class Cloud:
    """A cloud under fuzzing: its provider key, the sites the calls use, its endpoints."""

    key: str
    sites: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    provider: str = ""
    """The provider key, when not `key` (another account of the same cloud)."""
    simulator: tuple[tuple[str, Any], ...] = ()
    """Knobs of the provider's simulated cloud set for this Cloud's calls (another
    shape of the same server); the other Clouds of that provider get the defaults."""

    @property
    def provider_key(self) -> str:
        """Return the key of the cloud's provider."""
        return self.provider or self.key


HISTORY_SPAN = timedelta(days=1)
"""How much history a history call asks (one request at every cloud)."""


def span(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Return the history span: the last HISTORY_SPAN, on a quarter-hour boundary."""
    now = now or datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return end - HISTORY_SPAN, end


def pick(
    ctx: Context,
    ref0: str | None,
    *,
    history: bool = False,
    groups: int = 2,
    kind: Kind | None = None,
) -> list[Channel]:
    """Return the channels read at `ref0` (None: any), of at most `groups` reads."""
    chosen: list[Channel] = []
    seen: list[tuple[str, ...]] = []
    for channel in ctx.inventory.channels:
        if ref0 is not None and channel.ref[:1] != (ref0,):
            continue
        if history and not channel.history:
            continue
        if kind is not None and channel.kind is not kind:
            continue
        group = channel.ref[:3]
        if group not in seen:
            if len(seen) == groups:
                continue
            seen.append(group)
        chosen.append(channel)
    if not chosen:
        raise LookupError(f"no channel at {ref0} in the normal inventory")
    return chosen


# Calls and their oracles -----------------------------------------------------------


async def sign_in(ctx: Context) -> Any:
    """Sign in, then list the sites with the token it got."""
    account = await ctx.provider.async_login()
    return account, await ctx.provider.async_list_sites()


def check_sign_in(result: Any, ctx: Context) -> None:
    """Check the account and the sites listed after it."""
    account, sites = result
    contract.check_account(account)
    contract.check_sites(sites)


async def list_sites(ctx: Context) -> Any:
    """List the account's sites."""
    return await ctx.provider.async_list_sites()


def check_sites(result: Any, ctx: Context) -> None:
    """Check the sites."""
    contract.check_sites(result)


async def discover(ctx: Context) -> Any:
    """Describe the cloud's small demo sites."""
    return await ctx.provider.async_discover(ctx.sites)


def check_inventory(result: Any, ctx: Context) -> None:
    """Check the inventory of the sites asked."""
    contract.check_inventory(result, ctx.sites)


def latest(ref0: str | None, groups: int = 2) -> tuple[Call, Check]:
    """Read the latest values of the channels read at `ref0` (None: any)."""

    async def call(ctx: Context) -> Any:
        return await ctx.provider.async_latest(pick(ctx, ref0, groups=groups))

    def check(result: Any, ctx: Context) -> None:
        contract.check_latest(result, pick(ctx, ref0, groups=groups))

    return call, check


def history(ref0: str | None, *, kind: Kind | None = None) -> tuple[Call, Check]:
    """Read the history span of the first history channel read at `ref0`."""

    async def call(ctx: Context) -> Any:
        channel = pick(ctx, ref0, history=True, groups=1, kind=kind)[0]
        return [
            batch
            async for batch in ctx.provider.async_history(channel, ctx.start, ctx.end)
        ]

    def check(result: Any, ctx: Context) -> None:
        channel = pick(ctx, ref0, history=True, groups=1, kind=kind)[0]
        contract.check_history(result, channel, ctx.start, ctx.end)

    return call, check


def read_then_latest(ref0: str) -> tuple[Call, Check]:
    """Read a meter's last hours, then its values that come with that read.

    For clouds whose values come with the history read (Copper Labs' usage rows):
    the mutated answer reaches both.
    """

    def channels(ctx: Context) -> list[Channel]:
        meter = pick(ctx, ref0, history=True, groups=1)[0]
        return [c for c in ctx.inventory.channels if c.ref[:3] == meter.ref[:3]]

    async def call(ctx: Context) -> Any:
        meter = pick(ctx, ref0, history=True, groups=1)[0]
        async for _ in ctx.provider.async_history(
            meter, ctx.end - timedelta(hours=3), ctx.end
        ):
            pass
        return await ctx.provider.async_latest(channels(ctx))

    def check(result: Any, ctx: Context) -> None:
        contract.check_latest(result, channels(ctx))

    return call, check


async def alerts(ctx: Context) -> Any:
    """Read the alerts of the small sites (no channel)."""
    return await ctx.provider.async_latest((), ctx.sites)


def check_alerts(result: Any, ctx: Context) -> None:
    """Check the alerts (and that no reading came)."""
    contract.check_latest(result, ())


async def upload(ctx: Context) -> Any:
    """Import two rows into a datastream through every batch step."""
    upload_rows = getattr(ctx.provider, "async_upload")  # noqa: B009  (Energydata only)
    rows = [(ctx.end - timedelta(minutes=15), 1.5), (ctx.end, 2.5)]
    return await upload_rows("65603", rows, name="fuzz", poll=0.01, timeout=2.0)


def check_upload(result: Any, ctx: Context) -> None:
    """Check where the import ended: text id, status and errors."""
    contract.check_text_fields(result, "import")
    errors = getattr(result, "errors", ())
    for error in errors:
        contract.check_text_fields(error, "import error")
        if not isinstance(error, str):
            raise contract.ContractViolation("import error is not a str", repr(error))


def endpoint(
    name: str, path: str, pair: tuple[Call, Check], body: str = "json"
) -> Endpoint:
    """Build an endpoint from a (call, check) pair."""
    return Endpoint(name, path, pair[0], pair[1], body)


CLIMKIT_SITE = "64f1c2a9e3b5d7f900a2b301"
COPPER_SITE = f"e{1:023x}"
"""The Copper enterprise's first premise: three meters and a gateway."""
COPPER_PARTNER = r"/copper/api/v2/partner/[^/]+"
COPPER_HOME = "5f2b1c0e9a7d4e3b8c6a1d2e"
"""The Copper app demo user's Home: electricity, gas and water meters."""

FLEXMEASURES_SERVER = "fuzz"
"""The server part of the FlexMeasures entry's ids (its first host and port)."""
FLEXMEASURES_SITE = f"{FLEXMEASURES_SERVER}:{fm_data.HOUSE_ID}"
"""The demo house: grid, energy meter, price, temperature, solar; a battery below."""
FM_V3 = "/flexmeasures/api/v3_0"
FM_GRID = str(fm_data.GRID_POWER)
FM_METER = str(fm_data.ENERGY_METER)


def _flexmeasures(key: str, paged: bool) -> Cloud:
    """Return the FlexMeasures demo user's endpoints (assets plain, or paged)."""
    assets = [
        endpoint("assets", rf"{FM_V3}/assets$", (list_sites, check_sites)),
        endpoint("assets/discover", rf"{FM_V3}/assets$", (discover, check_inventory)),
    ]
    if paged:
        return Cloud(
            key=key,
            provider="flexmeasures",
            sites=(FLEXMEASURES_SITE,),
            endpoints=tuple(assets),
            simulator=(("always_paged_assets", True),),
        )
    data = rf"{FM_V3}/sensors/\d+/data$"
    return Cloud(
        key=key,
        sites=(FLEXMEASURES_SITE,),
        endpoints=(
            endpoint("api", r"/flexmeasures/api/?$", (sign_in, check_sign_in)),
            endpoint(
                "requestAuthToken",
                r"/api/requestAuthToken$",
                (sign_in, check_sign_in),
            ),
            # A token asked by a call that did not sign in first (the tokens cache).
            endpoint(
                "requestAuthToken/discover",
                r"/api/requestAuthToken$",
                (discover, check_inventory),
            ),
            *assets,
            endpoint(
                "sensors/discover", rf"{FM_V3}/sensors$", (discover, check_inventory)
            ),
            # A restored channel's sensor is read again before its values.
            endpoint("sensor/latest", rf"{FM_V3}/sensors/\d+$", latest(FM_GRID, 99)),
            endpoint("sensor/history", rf"{FM_V3}/sensors/\d+$", history(FM_GRID)),
            endpoint("data/latest/power", data, latest(FM_GRID, 99)),
            endpoint("data/latest", data, latest(None, 99)),
            endpoint("data/history/power", data, history(FM_GRID)),
            endpoint("data/history/energy", data, history(FM_METER)),
        ),
    )


CLOUDS: dict[str, Cloud] = {
    cloud.key: cloud
    for cloud in (
        Cloud(
            key="climkit",
            sites=(CLIMKIT_SITE,),
            endpoints=(
                endpoint("auth", r"/auth$", (sign_in, check_sign_in)),
                endpoint(
                    "all_installations",
                    r"/all_installations$",
                    (list_sites, check_sites),
                ),
                endpoint(
                    "all_installations/discover",
                    r"/all_installations$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "installation_infos",
                    r"/installation_infos/",
                    (discover, check_inventory),
                ),
                endpoint("meter_info", r"/meter_info/", (discover, check_inventory)),
                endpoint(
                    "sensors_list", r"/sensors_list$", (discover, check_inventory)
                ),
                endpoint("meter_data/latest", r"/meter_data/", latest("meter_data")),
                endpoint("meter_data/history", r"/meter_data/", history("meter_data")),
                endpoint("site_data/latest", r"/site_data/", latest("site_data")),
                endpoint("site_data/history", r"/site_data/", history("site_data")),
                endpoint(
                    "meter_data_raw/latest",
                    r"/meter_data_raw/",
                    latest("meter_data_raw"),
                ),
                endpoint("sensor_data/latest", r"/sensor_data/", latest("sensor_data")),
            ),
        ),
        Cloud(
            key="locus",
            sites=("3393701",),
            endpoints=(
                endpoint("oauth/token", r"^/oauth/token$", (sign_in, check_sign_in)),
                endpoint(
                    "partner/sites", r"/partners/\d+/sites$", (list_sites, check_sites)
                ),
                endpoint(
                    "partner/sites/discover",
                    r"/partners/\d+/sites$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "site/components",
                    r"/sites/\d+/components$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "site/dataavailable",
                    r"/sites/\d+/dataavailable$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "component/dataavailable",
                    r"/components/\d+/dataavailable$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "site/installinfo", r"/installinfo$", (discover, check_inventory)
                ),
                endpoint(
                    "site/modelsettings",
                    r"/modelsettings$",
                    (discover, check_inventory),
                ),
                endpoint("site/data/latest", r"/sites/\d+/data$", latest("site")),
                endpoint("site/data/history", r"/sites/\d+/data$", history("site")),
                endpoint(
                    "component/data/latest",
                    r"/components/\d+/data$",
                    latest("component"),
                ),
                endpoint(
                    "component/data/history",
                    r"/components/\d+/data$",
                    history("component"),
                ),
                endpoint("site/alerts", r"/sites/\d+/alerts$", (alerts, check_alerts)),
            ),
        ),
        Cloud(
            key="copper",
            sites=(COPPER_SITE,),
            endpoints=(
                endpoint(
                    "oauth/token",
                    r"/copper-auth/oauth/token$",
                    (sign_in, check_sign_in),
                ),
                endpoint(
                    "premise", rf"{COPPER_PARTNER}/premise$", (list_sites, check_sites)
                ),
                endpoint(
                    "premise/discover",
                    rf"{COPPER_PARTNER}/premise$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "meter/discover",
                    rf"{COPPER_PARTNER}/meter$",
                    (discover, check_inventory),
                ),
                endpoint(
                    "gateway/discover",
                    rf"{COPPER_PARTNER}/gateway$",
                    (discover, check_inventory),
                ),
                endpoint("bulk/latest", rf"{COPPER_PARTNER}/bulk$", latest("bulk")),
                endpoint(
                    "usage/latest",
                    r"/meter/[^/]+/usage$",
                    read_then_latest("usage"),
                ),
                endpoint("usage/history", r"/meter/[^/]+/usage$", history("usage")),
                endpoint(
                    "grid/latest", rf"{COPPER_PARTNER}/grid/latest$", latest("grid")
                ),
            ),
        ),
        Cloud(
            key="copper_app",
            provider="copper",
            sites=(COPPER_HOME,),
            endpoints=(
                endpoint("app/state", r"/app/state$", (list_sites, check_sites)),
                endpoint(
                    "app/state/discover", r"/app/state$", (discover, check_inventory)
                ),
                endpoint("app/instant", r"/app/instant/", latest("instant")),
                endpoint("app/usage/latest", r"/app/usage/", read_then_latest("usage")),
                endpoint("app/usage/history", r"/app/usage/", history("usage")),
            ),
        ),
        Cloud(
            key="energydata",
            sites=("5e1f0a7c9b2d",),
            endpoints=(
                endpoint(
                    "values/sign-in",
                    r"/datastreams/values$",
                    (sign_in, check_sign_in),
                    "csv",
                ),
                endpoint(
                    "values/latest",
                    r"/datastreams/values$",
                    latest(None, groups=99),
                    "csv",
                ),
                endpoint(
                    "values/history/register",
                    r"/datastreams/values$",
                    history(None, kind=Kind.REGISTER),
                    "csv",
                ),
                endpoint(
                    "values/history/amount",
                    r"/datastreams/values$",
                    history(None, kind=Kind.INTERVAL),
                    "csv",
                ),
                endpoint("import", r"/import", (upload, check_upload)),
            ),
        ),
        _flexmeasures("flexmeasures", paged=False),
        _flexmeasures("flexmeasures_paged", paged=True),
    )
}
"""Every cloud under fuzzing, by provider key."""


def find(cloud: str, name: str) -> Endpoint:
    """Return a cloud's endpoint by name."""
    return next(e for e in CLOUDS[cloud].endpoints if e.name == name)


def names() -> Sequence[tuple[str, str]]:
    """Return every (cloud, endpoint name) pair, in table order."""
    return [(c.key, e.name) for c in CLOUDS.values() for e in c.endpoints]
