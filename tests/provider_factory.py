"""Providers on a plain aiohttp session, without Home Assistant: one factory for every cloud.

`make_provider("locus")` is a provider of the simulator's demo account of that cloud;
keywords replace parts of it (`password=`, `api_url=`, `state=`, `settings=`,
`broker=`). `build_provider` is the same factory for a session or server of the
test's own. The fixtures are imported by tests/conftest.py, so every folder sees them.
"""

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
import pytest
from yarl import URL

from custom_components.cloud_energy_meters.providers import PROVIDERS
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.copper import CONF_AUTH_URL
from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from custom_components.cloud_energy_meters.providers.model import Channel, Interval
from custom_components.cloud_energy_meters.providers.provider import (
    AccountState,
    Provider,
)
from custom_components.cloud_energy_meters.providers.ratelimit import RateLimiter
from custom_components.cloud_energy_meters.providers.tokens import TokenCache
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME
from tests.simulator.clock import FakeClock
from tests.simulator.copper import (
    AUTH_PREFIX as COPPER_AUTH_PREFIX,
    ENTERPRISE_CLIENT_ID as COPPER_CLIENT_ID,
    ENTERPRISE_CLIENT_SECRET as COPPER_CLIENT_SECRET,
    ENTERPRISE_ID as COPPER_ENTERPRISE_ID,
)
from tests.simulator.energydata import DEMO_TOKEN as EDK_DEMO_TOKEN
from tests.simulator.flexmeasures_data import (
    DEMO_EMAIL as FM_DEMO_EMAIL,
    DEMO_PASSWORD as FM_DEMO_PASSWORD,
)
from tests.simulator.locus import (
    CC_CLIENT_ID,
    CC_CLIENT_SECRET,
    DEMO_CLIENT_ID as LOCUS_CLIENT_ID,
    DEMO_CLIENT_SECRET as LOCUS_CLIENT_SECRET,
    DEMO_PARTNER_ID as LOCUS_PARTNER_ID,
    DEMO_PASSWORD as LOCUS_PASSWORD,
    DEMO_USERNAME as LOCUS_USERNAME,
)
from tests.stub import StubServer

type MakeProvider = Callable[..., Any]
"""make_provider(cloud, **changes): see the module's docstring."""

EDK_ACCOUNT_ID = "5e1f0a7c9b2d"
"""The id an Energydata.dk entry's datastreams got when they were first added."""

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

DEMO_CREDENTIALS: dict[str, dict[str, Any]] = {
    "climkit": {"username": DEMO_USERNAME, "password": DEMO_PASSWORD},
    "energydata": {"api_token": EDK_DEMO_TOKEN},
    "locus": {
        "client_id": LOCUS_CLIENT_ID,
        "client_secret": LOCUS_CLIENT_SECRET,
        "username": LOCUS_USERNAME,
        "password": LOCUS_PASSWORD,
        "partner_id": LOCUS_PARTNER_ID,
    },
    # The enterprise account: a Copper app user's refresh token comes from a sign-in
    # (tests/copper/conftest.py).
    "copper": {
        "client_id": COPPER_CLIENT_ID,
        "client_secret": COPPER_CLIENT_SECRET,
        "enterprise_id": COPPER_ENTERPRISE_ID,
    },
    # The server part of the ids is learnt at the first sign-in (its host and port).
    "flexmeasures": {"email": FM_DEMO_EMAIL, "password": FM_DEMO_PASSWORD},
}
"""The simulator's demo account of each cloud."""


def provider_class(cloud: str) -> type[Provider]:
    """Return a cloud's provider class."""
    return PROVIDERS[cloud]


def default_settings(cloud: str, api_url: str) -> dict[str, Any]:
    """Return settings a cloud needs beside its API URL (Copper: its Auth0 tenant)."""
    if cloud == "copper":
        return {CONF_AUTH_URL: f"{URL(api_url).origin()}{COPPER_AUTH_PREFIX}"}
    return {}


LOCUS_CLIENT_CREDENTIALS: dict[str, Any] = {
    "client_id": CC_CLIENT_ID,
    "client_secret": CC_CLIENT_SECRET,
    "username": "",
    "password": "",
}
"""The simulator's Locus client allowed the client-credentials grant (no user)."""

DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "energydata": {
        "account_id": EDK_ACCOUNT_ID,
        "datastreams": [dict(raw) for raw in EDK_DATASTREAMS],
    },
}
"""What a user configured beyond credentials, per cloud: Energydata.dk's datastreams."""


def build_provider(
    cloud: str,
    session: ClientSession | None,
    *,
    api_url: str,
    state: AccountState | None = None,
    settings: Mapping[str, Any] | None = None,
    broker: Any = None,
    **credentials: Any,
) -> Any:
    """Return a provider of `cloud`'s demo account at `api_url`, changed as asked.

    `credentials` replace some of the demo account's; `settings` are added to the
    demo settings (a key given replaces the demo's); `broker` (a
    tests.mqtt_broker.Broker) adds its host, port and a TLS context trusting its CA;
    `state` defaults to a fresh one with the cloud's policy.
    """
    chosen = provider_class(cloud)
    extra: dict[str, Any] = default_settings(cloud, api_url)
    if broker is not None:
        extra |= {"mqtt_host": broker.host, "mqtt_port": broker.port}
    return chosen(
        session,  # type: ignore[arg-type]  # None: a test that sends no request
        api_url=api_url,
        credentials=DEMO_CREDENTIALS[cloud] | credentials,
        state=state or AccountState.for_policy(chosen.policy),
        settings=DEMO_SETTINGS.get(cloud, {}) | extra | dict(settings or {}),
        ssl_context=broker.ssl_context() if broker is not None else None,
    )


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    """Return a plain aiohttp session, closed after the test."""
    async with ClientSession() as client:
        yield client


@pytest.fixture
def make_provider(session: ClientSession, simulator: Simulator) -> MakeProvider:
    """Return the factory of providers talking to the simulator (see the docstring)."""
    plain = session

    def make(
        cloud: str,
        *,
        session: ClientSession | None = None,
        api_url: str | None = None,
        **changes: Any,
    ) -> Any:
        return build_provider(
            cloud,
            session or plain,
            api_url=api_url or simulator.url(cloud),
            **changes,
        )

    return make


@pytest.fixture
def climkit(make_provider: MakeProvider) -> ClimkitProvider:
    """Return a Climkit provider of the demo account (not logged in yet)."""
    return make_provider("climkit")  # type: ignore[no-any-return]


@pytest.fixture
def locus(make_provider: MakeProvider) -> LocusProvider:
    """Return a Locus provider of the demo user and partner (not logged in yet)."""
    return make_provider("locus")  # type: ignore[no-any-return]


@pytest.fixture
def energydata(make_provider: MakeProvider) -> EnergydataProvider:
    """Return an Energydata.dk provider of the demo token with the six datastreams."""
    return make_provider("energydata")  # type: ignore[no-any-return]


@pytest.fixture
def sim_clock(simulator: Simulator) -> FakeClock:
    """Freeze the simulator's clock at the real current time (the test moves it)."""
    clock = FakeClock(datetime.now(UTC))
    simulator.now = clock
    return clock


def account_state(
    cloud: str, margin: timedelta | None = None, **token_options: Any
) -> AccountState:
    """Return a fresh account state with the cloud's policy (as the test runs it).

    `margin` and `token_options` (a `clock`, a `fraction`) go to the token cache.
    """
    tokens = (
        TokenCache(**token_options)
        if margin is None
        else TokenCache(margin, **token_options)
    )
    return AccountState(
        limiter=RateLimiter(provider_class(cloud).policy), tokens=tokens
    )


async def collect(
    provider: Provider, channel: Channel, start: datetime, end: datetime
) -> list[Interval]:
    """Return every interval async_history yields, batches concatenated."""
    return [
        interval
        async for batch in provider.async_history(channel, start, end)
        for interval in batch
    ]


async def stub_channels(
    make_provider: MakeProvider, stub: StubServer
) -> tuple[EnergydataProvider, dict[int, Channel]]:
    """Return an Energydata.dk provider of the demo datastreams on the stub, by id."""
    provider = make_provider("energydata", api_url=f"{stub.url}/api/v1")
    inventory = await provider.async_discover([])
    return provider, {int(c.ref[0]): c for c in inventory.channels}
