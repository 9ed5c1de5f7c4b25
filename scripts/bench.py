"""Measure what the README claims: requests, durations and memory, at the real pace.

The simulator runs in its own process, like a real cloud, enforcing each cloud's
documented rate limit (it answers 429 to anything faster); this process runs the
provider layer for the demo account with the real rate policy: sign-in and site list
(the config flow), discovery, one refresh of the latest values, then the first backfill
of every statistic. Requests are counted by our own rate limiter; memory is what this
process allocated (tracemalloc peak during the step). Prints a Markdown table.

    scripts/bench [--days 30] [--cloud climkit|copper|locus|energydata|flexmeasures]
    scripts/bench --frontend [--read-delay MS]   (see scripts/bench_frontend.py)

Energydata.dk lists no datastreams: the demo's six, as a user enters them, are named
in the settings; its history is CSV streamed in chunks, so the backfill step shows the
parser's pace (rows per second) and that memory stays flat however long the span.
For Energydata.dk a second table measures, against the same simulator answers (the
same spans, ending at the last whole hour), our history path (`async_history`: rows
checked, put in time order, turned into intervals) and a naive client (whole body
read, `csv.reader`, int/float conversion, no checks): rows per second, best of
`--repeat` runs without tracemalloc, and peak memory in one run with it.

Copper Labs counts requests against 100 an hour and 1,000 a day: the demo Copper app
user signs in as a person does (the sign-in link, the e-mailed code, the pasted
address) and is measured as above; a second table gives the request plan
(providers/plan.py) of a home and of a 200-meter enterprise beside a client that
polls every meter every 15 minutes.

FlexMeasures counts 500 requests a minute per user (the simulator answers 429 beyond):
the demo user signs in at the simulated server, lists its two top-level assets and is
measured for the demo house alone (its sensors and its battery's).
"""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import csv
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
import io
from pathlib import Path
import sys
import time
import tracemalloc

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.cloud_energy_meters.providers import (  # noqa: E402
    PROVIDERS,
    AccountState,
    Provider,
)
from custom_components.cloud_energy_meters.providers.copper import (  # noqa: E402
    CONF_AUTH_URL,
    CopperProvider,
    code_from,
    sign_in_link,
)
from custom_components.cloud_energy_meters.providers.plan import (  # noqa: E402
    Demand,
    backfill_time,
    plan,
)
from tests.simulator import (  # noqa: E402
    climkit as sim_climkit,
    copper as sim_copper,
    energydata as sim_energydata,
    flexmeasures_data as sim_flexmeasures,
    locus as sim_locus,
)
from tests.simulator.process import simulator_process  # noqa: E402


@dataclass(frozen=True)
class Step:
    """One measured step."""

    name: str
    requests: int
    seconds: float
    peak_mb: float
    detail: str = ""


async def _measure(
    provider: Provider, name: str, work: Callable[[], Awaitable[str]]
) -> Step:
    limiter = provider.state.limiter
    sent = limiter.requests
    tracemalloc.start()
    started = time.monotonic()
    detail = await work()
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Step(name, limiter.requests - sent, seconds, peak / 1e6, detail)


CREDENTIALS = {
    "climkit": {
        "username": sim_climkit.DEMO_USERNAME,
        "password": sim_climkit.DEMO_PASSWORD,
    },
    "locus": {
        "client_id": sim_locus.DEMO_CLIENT_ID,
        "client_secret": sim_locus.DEMO_CLIENT_SECRET,
        "username": sim_locus.DEMO_USERNAME,
        "password": sim_locus.DEMO_PASSWORD,
        "partner_id": sim_locus.DEMO_PARTNER_ID,
    },
    "energydata": {"api_token": sim_energydata.DEMO_TOKEN},
    "copper": {},  # the refresh token comes from a sign-in (copper_sign_in)
    # The server part of the ids is learnt at sign-in (the simulator's host and port).
    "flexmeasures": {
        "email": sim_flexmeasures.DEMO_EMAIL,
        "password": sim_flexmeasures.DEMO_PASSWORD,
    },
}
SETTINGS = {
    "energydata": {
        "datastreams": [
            {"id": stream, **fields}
            for stream, fields in sim_energydata.USER_DATASTREAMS.items()
        ]
    }
}
API_PATHS = {
    "climkit": "/climkit/api/v1",
    "locus": "/locus/v3",
    "energydata": sim_energydata.PREFIX,
    "copper": sim_copper.PREFIX,
    "flexmeasures": "/flexmeasures",
}
CHOSEN = {"flexmeasures": f":{sim_flexmeasures.HOUSE_ID}"}
"""Clouds measured on one of their sites: the end of its id (FlexMeasures' house)."""


async def copper_sign_in(session: aiohttp.ClientSession, root: str) -> dict[str, str]:
    """Sign the demo Copper app user in as a person would; return the credentials."""
    auth = f"{root}{sim_copper.AUTH_PREFIX}"
    link, verifier = sign_in_link(auth)
    async with session.get(link) as page:
        page.raise_for_status()
    form = {"email": sim_copper.DEMO_EMAIL, "otp": sim_copper.DEMO_EMAIL_CODE}
    async with session.post(link, data=form, allow_redirects=False) as answer:
        code = code_from(answer.headers["Location"])
    assert code is not None
    signing = CopperProvider(
        session,
        api_url=f"{root}{sim_copper.PREFIX}",
        credentials={},
        state=AccountState.for_policy(CopperProvider.policy),
        settings={CONF_AUTH_URL: auth},
    )
    return {"refresh_token": await signing.async_exchange(code, verifier)}


def copper_plans() -> None:
    """Print the request plan of a home and of an enterprise, beside a poller."""
    budgets = CopperProvider.policy.budgets
    fresh = CopperProvider.shortest_refresh
    cases = [
        ("home: 1 premise, 3 meters", 3, Demand(1, 1, 3, fresh)),
        ("home: 2 premises, 5 meters (the demo)", 5, Demand(2, 1, 5, fresh)),
        ("enterprise: 200 meters", 200, Demand(2, 3, 200, fresh)),
        ("enterprise: 1,000 meters", 1000, Demand(10, 3, 1000, fresh)),
    ]
    print(
        "\n| account (share 60 %) | refresh | history of each meter | requests/day "
        "| 30-day backfill | 15-min poller, requests/day |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, meters, demand in cases:
        made = plan(demand, budgets, 0.6)
        took = backfill_time(made, budgets, demand.series)
        print(
            f"| {name} | {made.refresh.total_seconds() / 60:.0f} min "
            f"| {made.history.total_seconds() / 3600:.0f} h "
            f"| {made.requests_per_day(demand):.0f}"
            f"{'' if made.feasible else ' (too large: repair issue)'} "
            f"| {took.total_seconds() / 3600:.0f} h | {meters * 96:,} |".replace(
                "| 0 h |", "| within the hour |"
            )
        )


async def bench(cloud: str, days: int) -> tuple[list[Step], int]:
    """Measure a demo account at its cloud's real pace; return steps and 429 count."""
    provider_class = PROVIDERS[cloud]
    async with simulator_process() as root, aiohttp.ClientSession() as session:
        credentials = CREDENTIALS[cloud]
        settings = SETTINGS.get(cloud)
        if cloud == "copper":
            credentials = await copper_sign_in(session, root)
            settings = {CONF_AUTH_URL: f"{root}{sim_copper.AUTH_PREFIX}"}
        provider = provider_class(
            session,
            api_url=f"{root}{API_PATHS[cloud]}",
            credentials=credentials,
            state=AccountState.for_policy(provider_class.policy),
            settings=settings,
        )
        site_ids: list[str] = []
        box: dict[str, object] = {}

        async def sign_in() -> str:
            await provider.async_login()
            listed = [site.id for site in await provider.async_list_sites()]
            chosen = CHOSEN.get(cloud, "")
            site_ids.extend(site for site in listed if site.endswith(chosen))
            return f"{len(listed)} sites"

        async def discover() -> str:
            inventory = await provider.async_discover(site_ids)
            # What a refresh reads: the channels whose entities are on by default.
            box["channels"] = [c for c in inventory.channels if c.common]
            return (
                f"{len(inventory.channels)} channels, {len(inventory.devices)} devices"
            )

        async def refresh() -> str:
            channels = box["channels"]
            latest = await provider.async_latest(channels, site_ids)  # type: ignore[arg-type]
            cost = provider.refresh_cost(channels, site_ids)  # type: ignore[arg-type]
            return f"{len(latest.readings)} readings; refresh_cost() = {cost}"

        async def backfill() -> str:
            history = [c for c in box["channels"] if c.history and c.statistic]  # type: ignore[attr-defined]
            now = datetime.now(UTC)
            intervals = 0
            for channel in history:
                async for batch in provider.async_history(
                    channel, now - timedelta(days=days), now
                ):
                    intervals += len(batch)
            box["intervals"] = intervals
            return f"{days} days, {len(history)} statistics, {intervals} intervals"

        steps = [
            await _measure(provider, "sign in + list sites (config flow)", sign_in),
            await _measure(provider, "discovery (setup, every 12 h)", discover),
            await _measure(provider, "refresh of latest values", refresh),
            await _measure(provider, "first backfill", backfill),
        ]
        # The pace of the whole backfill: requests, waits and parsing.
        last = steps[-1]
        rate = int(box["intervals"]) / last.seconds  # type: ignore[call-overload]
        steps[-1] = replace(last, detail=f"{last.detail} ({rate:,.0f}/s)")
        return steps, provider.state.limiter.throttled


@dataclass(frozen=True)
class Pace:
    """One history client's pace on the same answers."""

    name: str
    rows: int
    seconds: float
    peak_mb: float


async def _race(
    works: list[Callable[[], Awaitable[int]]], repeat: int
) -> list[tuple[int, float]]:
    """Run each work `repeat` times, taking turns; return each count and best time.

    Turns, so that a machine busy with something else slows both alike.
    """
    best = [float("inf")] * len(works)
    counts = [0] * len(works)
    for _ in range(repeat):
        for index, work in enumerate(works):
            started = time.perf_counter()
            counts[index] = await work()
            best[index] = min(best[index], time.perf_counter() - started)
    return list(zip(counts, best, strict=True))


async def _peak(work: Callable[[], Awaitable[int]]) -> float:
    """Return the peak MB `work` allocates (tracemalloc, which slows it)."""
    tracemalloc.start()
    try:
        await work()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


async def compare(days: int, repeat: int) -> tuple[list[Pace], int, int]:
    """Our Energydata.dk history path against a naive client, on the same answers."""
    cloud = "energydata"
    async with simulator_process() as root, aiohttp.ClientSession() as session:
        api_url = f"{root}{API_PATHS[cloud]}"
        provider = PROVIDERS[cloud](
            session,
            api_url=api_url,
            credentials=CREDENTIALS[cloud],
            state=AccountState.for_policy(PROVIDERS[cloud].policy),
            settings=SETTINGS[cloud],
        )
        inventory = await provider.async_discover([])
        history = [c for c in inventory.channels if c.history and c.statistic]
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=days)
        intervals = 0

        async def ours() -> int:
            nonlocal intervals
            intervals = 0
            for channel in history:
                async for batch in provider.async_history(channel, start, end):
                    intervals += len(batch)
                    del batch  # a store-as-you-go consumer keeps none
            return intervals

        async def naive() -> int:
            rows = 0
            for channel in history:
                params = {
                    "ids": channel.ref[0],
                    "from": start.replace(tzinfo=None).isoformat(),
                    "to": end.replace(tzinfo=None).isoformat(),
                }
                headers = {"Authorization": f"Bearer {sim_energydata.DEMO_TOKEN}"}
                async with session.get(
                    f"{api_url}/datastreams/values", params=params, headers=headers
                ) as response:
                    body = await response.read()
                parsed = [
                    (int(stream), int(stamp), float(value))
                    for stream, stamp, value in csv.reader(io.StringIO(body.decode()))
                ]
                rows += len(parsed)
            return rows

        await naive()  # both start with the simulator warm
        (_, our_seconds), (rows, naive_seconds) = await _race([ours, naive], repeat)
        paces = [
            Pace("ours: async_history", rows, our_seconds, await _peak(ours)),
            Pace("naive: whole body, csv.reader", rows, naive_seconds, 0.0),
        ]
        paces[1] = replace(paces[1], peak_mb=await _peak(naive))
        return paces, intervals, len(history)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    if "--frontend" in sys.argv:  # a large account's setup in Home Assistant
        from scripts import bench_frontend  # noqa: PLC0415

        bench_frontend.main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cloud", choices=sorted(CREDENTIALS), default="climkit")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    steps, throttled = asyncio.run(bench(args.cloud, args.days))
    print(f"| {args.cloud} step | requests | seconds | peak MB | detail |")
    print("|---|---:|---:|---:|---|")
    for item in steps:
        print(
            f"| {item.name} | {item.requests} | {item.seconds:.1f} "
            f"| {item.peak_mb:.1f} | {item.detail} |"
        )
    print(f"\n429 answers received: {throttled}")
    if args.cloud == "copper":
        copper_plans()
    if args.cloud != "energydata":
        return
    paces, intervals, statistics = asyncio.run(compare(args.days, args.repeat))
    print(
        f"\n| history, {args.days} days, {statistics} statistics "
        "| rows | seconds | rows/s | peak MB |"
    )
    print("|---|---:|---:|---:|---:|")
    for pace in paces:
        print(
            f"| {pace.name} | {pace.rows:,} | {pace.seconds:.2f} "
            f"| {pace.rows / pace.seconds:,.0f} | {pace.peak_mb:.1f} |"
        )
    ours, naive = paces
    print(
        f"\nours / naive: {naive.seconds / ours.seconds:.2f}x the rows/s, "
        f"{ours.peak_mb / naive.peak_mb:.2f}x the peak memory; "
        f"{intervals:,} intervals"
    )


if __name__ == "__main__":
    main()
