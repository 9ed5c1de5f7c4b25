"""Run the simulator standalone: ``python -m tests.simulator --port 8765``.

This is the offline demo backend (scripts/develop starts it next to a
throwaway Home Assistant), so it prints what a user must type into the
config flow and serves until interrupted.
"""

import argparse
import asyncio
import contextlib
from datetime import timedelta
import signal

from . import copper, energydata, flexmeasures, locus
from .app import Simulator
from .climkit import DEMO_PASSWORD, DEMO_USERNAME


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulator", description="Serve the simulated clouds."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (0 = any)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="Climkit: minimum seconds between two requests of one account (0 = off)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=900.0,
        help="Climkit: access token lifetime in seconds",
    )
    parser.add_argument(
        "--locus-concurrency",
        type=int,
        default=1,
        help="Locus: requests one account may have in progress (0 = unlimited)",
    )
    parser.add_argument(
        "--locus-token-lifetime",
        type=float,
        default=3600.0,
        help="Locus: access token lifetime in seconds",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the simulator, print the endpoints and credentials, serve forever."""
    sim = Simulator()
    sim.climkit.min_interval = args.rate
    sim.climkit.token_lifetime = timedelta(seconds=args.token_lifetime)
    sim.locus.max_concurrency = args.locus_concurrency
    sim.locus.token_lifetime = timedelta(seconds=args.locus_token_lifetime)
    await sim.start(host=args.host, port=args.port)
    print(  # noqa: T201
        f"Climkit: {sim.url('climkit')}  username={DEMO_USERNAME} password={DEMO_PASSWORD}",
        flush=True,
    )
    print(  # noqa: T201
        f"Locus Energy: {sim.url('locus')}  client_id={locus.DEMO_CLIENT_ID} "
        f"client_secret={locus.DEMO_CLIENT_SECRET} username={locus.DEMO_USERNAME} "
        f"password={locus.DEMO_PASSWORD} partner_id={locus.DEMO_PARTNER_ID}",
        flush=True,
    )
    print(  # noqa: T201
        f"Energydata.dk: {sim.url('energydata')}  api_token={energydata.DEMO_TOKEN} "
        f"(read-only: {energydata.READ_ONLY_TOKEN}) datastreams="
        + ",".join(str(stream_id) for stream_id in sim.energydata.datastreams),
        flush=True,
    )
    print(  # noqa: T201
        f"Copper Labs: {sim.url('copper')}  auth_url={sim.base_url}{copper.AUTH_PREFIX} "
        f"app e-mail={copper.DEMO_EMAIL} e-mail code={copper.DEMO_EMAIL_CODE}; "
        f"enterprise client_id={copper.ENTERPRISE_CLIENT_ID} "
        f"client_secret={copper.ENTERPRISE_CLIENT_SECRET} "
        f"enterprise_id={copper.ENTERPRISE_ID}",
        flush=True,
    )
    print(  # noqa: T201
        f"FlexMeasures: {sim.url('flexmeasures')}  e-mail={flexmeasures.DEMO_EMAIL} "
        f"password={flexmeasures.DEMO_PASSWORD} (other account: "
        f"{flexmeasures.OTHER_EMAIL} / {flexmeasures.OTHER_PASSWORD})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows; there Ctrl-C still ends asyncio.run with KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        print("Simulator stopped.", flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> None:
    """Entry point: serve until Ctrl-C or SIGTERM, then stop cleanly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
