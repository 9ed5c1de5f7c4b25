"""Measure what the README claims: requests, durations and memory, at the real pace.

The simulator runs in its own process, like a real cloud, enforcing each cloud's
documented rate limit (it answers 429 to anything faster); this process runs the
provider layer for the demo account with the real rate policy: sign-in and site list
(the config flow), discovery, one refresh of the latest values, then the first backfill
of every statistic. Requests are counted by our own rate limiter; memory is what this
process allocated (tracemalloc peak during the step). Prints a Markdown table.

    scripts/bench [--days 30] [--cloud climkit|locus|energydata]

Energydata.dk lists no datastreams: the demo's six, as a user enters them, are named
in the settings; its history is CSV streamed in chunks, so the backfill step shows the
parser's pace (rows per second) and that memory stays flat however long the span.
"""

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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
from tests.simulator import (  # noqa: E402
    climkit as sim_climkit,
    energydata as sim_energydata,
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
}


async def bench(cloud: str, days: int) -> tuple[list[Step], int]:
    """Measure a demo account at its cloud's real pace; return steps and 429 count."""
    provider_class = PROVIDERS[cloud]
    async with simulator_process() as root, aiohttp.ClientSession() as session:
        provider = provider_class(
            session,
            api_url=f"{root}{API_PATHS[cloud]}",
            credentials=CREDENTIALS[cloud],
            state=AccountState.for_policy(provider_class.policy),
            settings=SETTINGS.get(cloud),
        )
        site_ids: list[str] = []
        box: dict[str, object] = {}

        async def sign_in() -> str:
            await provider.async_login()
            site_ids.extend(site.id for site in await provider.async_list_sites())
            return f"{len(site_ids)} sites"

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


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cloud", choices=sorted(CREDENTIALS), default="climkit")
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


if __name__ == "__main__":
    main()
