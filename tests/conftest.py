"""Fixtures: the cloud simulator on loopback, Home Assistant with a recorder, entries.

Tests talk to the simulator over real HTTP. The only thing scaled for speed is the
clock of rate limits: the simulator enforces none and our policy spaces nothing, except
in tests marked `real_rates`, which run both at the documented pace.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
import logging
import os
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
import pytest_socket
from syrupy.assertion import SnapshotAssertion

# Imported so that the package under test, not the plugin's testing_config, is found.
import custom_components.cloud_energy_meters  # noqa: F401
from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, Platform
from homeassistant.core import HomeAssistant

from . import flexmeasures_real as fm_real
from .flexmeasures_real import (  # noqa: F401  (fixtures every folder sees)
    flexmeasures_real,
    flexmeasures_real_worker,
)
from .helpers import settle
from .mqtt_broker import mqtt_broker  # noqa: F401
from .provider_factory import (  # noqa: F401  (fixtures every folder sees)
    EDK_ACCOUNT_ID,
    climkit,
    energydata,
    locus,
    make_provider,
    session,
    sim_clock,
)
from .simulator import Simulator
from .simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITES
from .simulator.energydata import (
    DEMO_TOKEN as EDK_TOKEN,
    USER_DATASTREAMS as EDK_STREAMS,
)
from .simulator.locus import (
    DEMO_CLIENT_ID as LOCUS_CLIENT_ID,
    DEMO_CLIENT_SECRET as LOCUS_CLIENT_SECRET,
    DEMO_PARTNER_ID as LOCUS_PARTNER_ID,
    DEMO_PASSWORD as LOCUS_PASSWORD,
    DEMO_USERNAME as LOCUS_USERNAME,
)
from .stub import stub  # noqa: F401

SITE_IDS = [site.id for site in SITES]


def pytest_configure(config: pytest.Config) -> None:
    """Register the project's markers."""
    config.addinivalue_line(
        "markers",
        "real_rates: run the simulator and our limiter at the documented pace",
    )
    config.addinivalue_line(
        "markers",
        "e2e: runs a real Home Assistant process (tests/e2e; deselect: -m 'not e2e')",
    )
    config.addinivalue_line(
        "markers",
        "browser: Chromium clicks through scripts/develop's Home Assistant"
        " (tests/browser; deselect: -m 'not browser')",
    )
    config.addinivalue_line(
        "markers",
        "fuzz: hostile answers for every endpoint (tests/fuzz; deselect: -m 'not fuzz')",
    )
    # One real FlexMeasures server per run, shared by the xdist workers.
    fm_real.configure(config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Run `-n auto` (scripts/test) with one worker more than cores.

    Many tests wait on real time (request spacing, Retry-After, a Home Assistant
    process): the spare worker fills those waits. On the 2-core CI machine the
    whole suite took 278 s with 2 workers, 207 s with 3, 199 s with 4.
    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, is the number itself.
    """
    from xdist.plugin import (  # noqa: PLC0415  (only with pytest-xdist loaded)
        pytest_xdist_auto_num_workers as one_per_core,
    )

    spare = 0 if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else 1
    return int(one_per_core(config)) + spare


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture(autouse=True)
def quiet_sqlalchemy() -> None:
    """Keep the recorder's SQL out of test output (the plugin logs it at INFO)."""
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture
async def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """Let tests that use the recorder set it up before Home Assistant starts."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Use Home Assistant's snapshot format."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Enable every entity, disabled-by-default ones included (core's fixture)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def only_platform(request: pytest.FixtureRequest) -> Iterator[None]:
    """Load one entity platform (snapshot_platform wants one); default: sensor."""
    platform = getattr(request, "param", Platform.SENSOR)
    with patch("custom_components.cloud_energy_meters.PLATFORMS", [platform]):
        yield


@pytest.fixture
def loopback(socket_enabled: None) -> None:
    """Allow sockets to loopback only (the plugin blocks every INET socket)."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)


@pytest.fixture(autouse=True)
def fast_rates(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Scale the rate-limit clock to zero unless the test is marked `real_rates`."""
    if request.node.get_closest_marker("real_rates"):
        return False
    monkeypatch.setattr(ClimkitProvider, "policy", RatePolicy(min_interval=0))
    return True


@pytest.fixture
async def simulator(loopback: None, fast_rates: bool) -> AsyncIterator[Simulator]:
    """Serve the simulated clouds on a free loopback port."""
    sim = Simulator()
    if fast_rates:
        sim.climkit.min_interval = 0
        # Headers stay; a test sets enforce_rate_limits = True to get FlexMeasures' 429s.
        sim.flexmeasures.enforce_rate_limits = False
    await sim.start()
    yield sim
    await sim.stop()


def climkit_entry_for(
    simulator: Simulator,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
    sites: list[str] | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a Climkit entry of an account of the simulator (not yet added)."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=f"Climkit {username}",
        unique_id=f"climkit_{username}",
        data={
            CONF_PROVIDER: "climkit",
            CONF_USERNAME: username,
            CONF_PASSWORD: password,
            CONF_API_URL: simulator.url("climkit"),
            CONF_SITES: SITE_IDS if sites is None else sites,
            CONF_KNOWN_SITES: SITE_IDS,
        },
        options={CONF_BACKFILL_DAYS: 3} if options is None else options,
    )


@pytest.fixture
def climkit_entry(simulator: Simulator) -> MockConfigEntry:
    """Return a Climkit entry of the demo account with all three sites."""
    return climkit_entry_for(simulator)


LOCUS_SMALL_SITES = ["3393701", "3393702"]


def locus_entry_for(
    simulator: Simulator,
    *,
    client_id: str = LOCUS_CLIENT_ID,
    client_secret: str = LOCUS_CLIENT_SECRET,
    username: str = LOCUS_USERNAME,
    password: str = LOCUS_PASSWORD,
    partner_id: int = LOCUS_PARTNER_ID,
    sites: list[str] | None = None,
    options: dict[str, Any] | None = None,
    unique_id: str | None = None,
) -> MockConfigEntry:
    """Return a Locus entry of an account of the simulator (not yet added)."""
    who = (username or client_id).casefold()
    chosen = LOCUS_SMALL_SITES if sites is None else sites
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=f"Locus Energy {who}",
        unique_id=unique_id or f"locus_{partner_id}:{who}",
        data={
            CONF_PROVIDER: "locus",
            "client_id": client_id,
            "client_secret": client_secret,
            CONF_USERNAME: username,
            CONF_PASSWORD: password,
            "partner_id": partner_id,
            CONF_API_URL: simulator.url("locus"),
            CONF_SITES: chosen,
            CONF_KNOWN_SITES: [
                str(site.id) for site in simulator.locus.sites_of(partner_id)
            ],
        },
        options={CONF_BACKFILL_DAYS: 3} if options is None else options,
    )


@pytest.fixture
def locus_entry(simulator: Simulator) -> MockConfigEntry:
    """Return a Locus entry of the demo account with the two small sites."""
    return locus_entry_for(simulator)


def energydata_entry_for(
    simulator: Simulator,
    *,
    streams: list[int] | None = None,
    token: str = EDK_TOKEN,
    mqtt_port: int = 1,
    topics: bool = False,
    options: dict[str, Any] | None = None,
    account_id: str = EDK_ACCOUNT_ID,
    roles: Mapping[int, str] | None = None,
) -> MockConfigEntry:
    """Return an Energydata.dk entry with datastream subentries (not yet added).

    Without `topics` the datastreams are polled only (no MQTT connection is made).
    """
    chosen = list(EDK_STREAMS) if streams is None else streams
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title="Energydata.dk",
        unique_id=f"energydata_{account_id}",
        data={
            CONF_PROVIDER: "energydata",
            "api_token": token,
            CONF_API_URL: simulator.url("energydata"),
            "mqtt_host": "127.0.0.1",
            "mqtt_port": mqtt_port,
            "account_id": account_id,
            CONF_SITES: [account_id],
            CONF_KNOWN_SITES: [account_id],
        },
        options={CONF_BACKFILL_DAYS: 3} if options is None else options,
        subentries_data=[
            ConfigSubentryData(
                data={
                    "id": stream,
                    **EDK_STREAMS[stream],
                    "topic": EDK_STREAMS[stream]["topic"] if topics else "",
                    **({"role": roles[stream]} if roles and stream in roles else {}),
                },
                subentry_type="datastream",
                title=EDK_STREAMS[stream]["name"],
                unique_id=str(stream),
            )
            for stream in chosen
        ],
    )


type SetupEntry = Callable[[MockConfigEntry], Awaitable[bool]]


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant, recorder_mock: Any
) -> AsyncIterator[SetupEntry]:
    """Add an entry, set it up, and wait for its history import to finish.

    After the test, imports still running finish before the recorder stops: a
    test that moves the clock an hour on starts the hourly import as it goes.
    """

    async def _setup(entry: MockConfigEntry) -> bool:
        if hass.config_entries.async_get_entry(entry.entry_id) is None:
            entry.add_to_hass(hass)
        result = await hass.config_entries.async_setup(entry.entry_id)
        await settle(hass)
        return result

    yield _setup
    await settle(hass)
