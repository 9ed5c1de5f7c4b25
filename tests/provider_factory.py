"""Fixtures for provider tests: an HTTP session, the providers of each cloud, a stub.

Providers are built directly on an aiohttp session, without Home Assistant. The
simulator (tests/simulator) plays Climkit, Locus Energy and Energydata.dk;
`StubServer` answers whatever a test programs, for payloads and statuses the
simulator never produces.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from typing import Any

from aiohttp import ClientSession, web
import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import Channel, Interval
from custom_components.cloud_energy_meters.providers.provider import AccountState
from custom_components.cloud_energy_meters.providers.ratelimit import RateLimiter
from custom_components.cloud_energy_meters.providers.tokens import TokenCache
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME
from tests.simulator.clock import FakeClock
from tests.simulator.energydata import DEMO_TOKEN as EDK_DEMO_TOKEN
from tests.simulator.locus import (
    CC_CLIENT_ID,
    CC_CLIENT_SECRET,
    DEMO_CLIENT_ID as LOCUS_CLIENT_ID,
    DEMO_CLIENT_SECRET as LOCUS_CLIENT_SECRET,
    DEMO_PARTNER_ID as LOCUS_PARTNER_ID,
    DEMO_PASSWORD as LOCUS_PASSWORD,
    DEMO_USERNAME as LOCUS_USERNAME,
)

EDK_ACCOUNT_ID = "5e1f0a7c9b2d"
"""The id an Energydata.dk entry's datastreams got when they were first added."""

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
type MakeProvider = Callable[..., ClimkitProvider]


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    """Return a plain aiohttp session, closed after the test."""
    async with ClientSession() as client:
        yield client


@pytest.fixture
def sim_clock(simulator: Simulator) -> FakeClock:
    """Freeze the simulator's clock at the real current time (the test moves it)."""
    clock = FakeClock(datetime.now(UTC))
    simulator.now = clock
    return clock


def new_state(margin: timedelta | None = None, **kwargs: Any) -> AccountState:
    """Return a fresh account state with Climkit's (test-time) policy."""
    tokens = TokenCache(**kwargs) if margin is None else TokenCache(margin, **kwargs)
    return AccountState(limiter=RateLimiter(ClimkitProvider.policy), tokens=tokens)


@pytest.fixture
def make_provider(session: ClientSession, simulator: Simulator) -> MakeProvider:
    """Return a factory of Climkit providers talking to the simulator."""

    def make(
        username: str = DEMO_USERNAME,
        password: str | None = DEMO_PASSWORD,
        *,
        state: AccountState | None = None,
        api_url: str | None = None,
    ) -> ClimkitProvider:
        return ClimkitProvider(
            session,
            api_url=api_url or simulator.url("climkit"),
            credentials={"username": username, "password": password},
            state=state or AccountState.for_policy(ClimkitProvider.policy),
        )

    return make


@pytest.fixture
def climkit(make_provider: MakeProvider) -> ClimkitProvider:
    """Return a provider of the demo account (not logged in yet)."""
    return make_provider()


async def collect(
    provider: ClimkitProvider, channel: Any, start: datetime, end: datetime
) -> list[Interval]:
    """Return every interval async_history yields, batches concatenated."""
    return [
        interval
        async for batch in provider.async_history(channel, start, end)
        for interval in batch
    ]


@dataclass
class StubServer:
    """A loopback HTTP server answering what the test programs, path by path."""

    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def hang(self) -> None:
        """Keep a handler waiting until the server stops (a cloud that never answers)."""
        await self.released.wait()

    def on(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler`."""
        self.handlers[(method, path)] = handler

    def json(
        self,
        method: str,
        path: str,
        body: Any,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `method path` with a fixed JSON body."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(
                text=json.dumps(body),
                status=status,
                content_type="application/json",
                headers=headers,
            )

        self.on(method, path, handler)

    def climkit_auth(self, valid_until: bool = True) -> None:
        """Serve a Climkit /auth that hands out one token, 15 minutes long."""
        expires = datetime.now(UTC) + timedelta(minutes=15)
        body: dict[str, Any] = {"access_token": "stub-token"}
        if valid_until:
            body["valid_until"] = {"$date": int(expires.timestamp() * 1000)}
        self.json("POST", "/auth", body)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Record the request and run its handler (404 when none is programmed)."""
        self.requests.append((request.method, request.path, dict(request.headers)))
        handler = self.handlers.get((request.method, request.path))
        if handler is None:
            return web.json_response({"message": "no such stub"}, status=404)
        return await handler(request)


@pytest.fixture
async def stub(loopback: None) -> AsyncIterator[StubServer]:
    """Serve a programmable stub on a free loopback port."""
    server = StubServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    server.released.set()
    await runner.cleanup()


# Locus Energy ---------------------------------------------------------------------------

type MakeLocus = Callable[..., LocusProvider]


def locus_state(clock: FakeClock | None = None) -> AccountState:
    """Return a fresh Locus account state (its real policy), its tokens on `clock`."""
    tokens = TokenCache() if clock is None else TokenCache(clock=clock)
    return AccountState(limiter=RateLimiter(LocusProvider.policy), tokens=tokens)


def locus_credentials(
    *, client_credentials: bool = False, partner_id: object = LOCUS_PARTNER_ID
) -> dict[str, Any]:
    """Return the simulator's demo user (or its client-credentials client)."""
    if client_credentials:
        return {
            "client_id": CC_CLIENT_ID,
            "client_secret": CC_CLIENT_SECRET,
            "username": "",
            "password": "",
            "partner_id": partner_id,
        }
    return {
        "client_id": LOCUS_CLIENT_ID,
        "client_secret": LOCUS_CLIENT_SECRET,
        "username": LOCUS_USERNAME,
        "password": LOCUS_PASSWORD,
        "partner_id": partner_id,
    }


@pytest.fixture
def make_locus(session: ClientSession, simulator: Simulator) -> MakeLocus:
    """Return a factory of Locus providers talking to the simulator."""

    def make(
        *,
        client_credentials: bool = False,
        partner_id: object = LOCUS_PARTNER_ID,
        state: AccountState | None = None,
        api_url: str | None = None,
        **overrides: Any,
    ) -> LocusProvider:
        credentials = locus_credentials(
            client_credentials=client_credentials, partner_id=partner_id
        )
        return LocusProvider(
            session,
            api_url=api_url or simulator.url("locus"),
            credentials=credentials | overrides,
            state=state or AccountState.for_policy(LocusProvider.policy),
        )

    return make


@pytest.fixture
def locus(make_locus: MakeLocus) -> LocusProvider:
    """Return a Locus provider of the demo user and partner (not logged in yet)."""
    return make_locus()


async def collect_locus(
    provider: LocusProvider, channel: Any, start: datetime, end: datetime
) -> list[Interval]:
    """Return every interval a Locus async_history yields, batches concatenated."""
    return [
        interval
        async for batch in provider.async_history(channel, start, end)
        for interval in batch
    ]


def locus_stub_auth(stub: StubServer, body: Any = None) -> None:
    """Serve a Locus token endpoint on the stub (one token, an hour long)."""
    stub.json(
        "POST",
        "/oauth/token",
        {"access_token": "stub-token", "expires_in": 3600} if body is None else body,
    )


# Energydata.dk --------------------------------------------------------------------------

type MakeEnergydata = Callable[..., EnergydataProvider]


EDK_DATASTREAMS: tuple[dict[str, Any], ...] = (
    {
        "id": 65603,
        "name": "Main meter",
        "quantity": "energy",
        "unit": "kWh",
        "meaning": "register",
        "topic": "dtu-b101/meter/main/energy",
        "group": "g1",
    },
    {
        "id": 65607,
        "name": "PV yield",
        "quantity": "energy",
        "unit": "Wh",
        "meaning": "amount_end",
        "topic": "dtu-b101/pv/yield",
        "group": "g1",
    },
    {
        "id": 65863,
        "name": "Room 12 temperature",
        "quantity": "temperature",
        "unit": "°C",
        "meaning": "measurement",
        "topic": "dtu-b101/room/12/temperature",
        "group": "g2",
    },
    {
        "id": 70001,
        "name": "District heating volume",
        "quantity": "water",
        "unit": "m³",
        "meaning": "register",
        "topic": "dtu-b101/heating/volume",
    },
    {
        "id": 70002,
        "name": "Battery state",
        "quantity": "text",
        "unit": "",
        "meaning": "measurement",
        "topic": "dtu-b101/battery/state",
    },
    {
        "id": 70003,
        "name": "Gas meter",
        "quantity": "gas",
        "unit": "L",
        "meaning": "register",
        "topic": "dtu-b101/meter/gas/volume",
    },
)
"""The simulator's six demo datastreams as a user would describe them."""


@pytest.fixture
def make_energydata(session: ClientSession, simulator: Simulator) -> MakeEnergydata:
    """Return a factory of Energydata.dk providers talking to the simulator.

    `datastreams` replaces the demo set; `broker` (a tests.mqtt_broker.Broker) adds
    its host, port and a TLS context trusting its CA; other keywords are settings.
    """

    def make(
        token: str = EDK_DEMO_TOKEN,
        *,
        datastreams: Sequence[Mapping[str, Any]] = EDK_DATASTREAMS,
        api_url: str | None = None,
        broker: Any = None,
        state: AccountState | None = None,
        **settings: Any,
    ) -> EnergydataProvider:
        extra: dict[str, Any] = {}
        if broker is not None:
            extra = {"mqtt_host": broker.host, "mqtt_port": broker.port}
        return EnergydataProvider(
            session,
            api_url=api_url or simulator.url("energydata"),
            credentials={"api_token": token},
            state=state or AccountState.for_policy(EnergydataProvider.policy),
            settings={
                "account_id": EDK_ACCOUNT_ID,
                "datastreams": [dict(raw) for raw in datastreams],
            }
            | extra
            | settings,
            ssl_context=broker.ssl_context() if broker is not None else None,
        )

    return make


@pytest.fixture
def energydata(make_energydata: MakeEnergydata) -> EnergydataProvider:
    """Return a provider of the demo token with the six demo datastreams."""
    return make_energydata()


async def collect_energydata(
    provider: EnergydataProvider, channel: Any, start: datetime, end: datetime
) -> list[Interval]:
    """Return every interval an Energydata async_history yields, batches concatenated."""
    return [
        interval
        async for batch in provider.async_history(channel, start, end)
        for interval in batch
    ]


async def stub_channels(
    make_energydata: MakeEnergydata, stub: StubServer
) -> tuple[EnergydataProvider, dict[int, Channel]]:
    """Return a provider of the demo datastreams on the stub, with its channels."""
    provider = make_energydata(api_url=f"{stub.url}/api/v1")
    inventory = await provider.async_discover([])
    return provider, {int(c.ref[0]): c for c in inventory.channels}
