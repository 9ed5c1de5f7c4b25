"""Climkit under the simulator's faults: each becomes the error the layer above expects."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import socket
from typing import Any

import pytest

from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.errors import (
    CannotConnect,
    InvalidResponse,
    RateLimited,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.model import Inventory, Kind
from tests.provider_factory import MakeProvider, collect
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_CENTRALE, SITE_LAC, SITES

type Action = Callable[[ClimkitProvider, Inventory], Awaitable[Any]]


@pytest.fixture
async def inventory(climkit: ClimkitProvider) -> Inventory:
    """Discover site 1 and site 2 (before any fault is queued)."""
    return await climkit.async_discover([SITE_LAC.id, SITE_CENTRALE.id])


def channel_of(inventory: Inventory, endpoint: str) -> list[Any]:
    """Return one channel read from `endpoint` (by the shape of its key)."""
    for channel in inventory.channels:
        kind = channel.kind
        if endpoint == "meter_data" and kind is Kind.INTERVAL and channel.source_id:
            return [channel]
        if endpoint == "meter_data_raw" and kind is Kind.REGISTER:
            return [channel]
        if endpoint == "site_data" and ":site:" in channel.key:
            return [channel]
        if endpoint == "sensor_data" and kind is Kind.INSTANT:
            return [channel]
    raise AssertionError(endpoint)


async def list_sites(provider: ClimkitProvider, _inventory: Inventory) -> Any:
    """List the account's sites."""
    return await provider.async_list_sites()


async def discover(provider: ClimkitProvider, _inventory: Inventory) -> Any:
    """Discover site 1."""
    return await provider.async_discover([SITE_LAC.id])


def latest(endpoint: str) -> Action:
    """Return an action reading the latest value of a channel of `endpoint`."""

    async def action(provider: ClimkitProvider, inventory: Inventory) -> Any:
        return (await provider.async_latest(channel_of(inventory, endpoint))).readings

    return action


def history(endpoint: str) -> Action:
    """Return an action reading one day of history of a channel of `endpoint`."""

    async def action(provider: ClimkitProvider, inventory: Inventory) -> Any:
        (channel,) = channel_of(inventory, endpoint)
        start = datetime(2026, 11, 1, tzinfo=UTC)
        return await collect(provider, channel, start, start + timedelta(days=1))

    return action


async def test_http_500_is_cannot_connect(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """A 500 answer raises CannotConnect; the next call works again."""
    simulator.faults.add("http_500", path="meter_data/")
    with pytest.raises(CannotConnect):
        await latest("meter_data")(climkit, inventory)
    assert await latest("meter_data")(climkit, inventory)


async def test_timeout_is_cannot_connect(
    simulator: Simulator, climkit: ClimkitProvider, inventory: Inventory
) -> None:
    """A cloud that hangs past the transport's timeout raises CannotConnect."""
    simulator.faults.timeout_seconds = 3
    simulator.faults.add("timeout", path="all_installations")
    climkit._transport.timeout = 0.3
    with pytest.raises(CannotConnect):
        await climkit.async_list_sites()


async def test_unreachable_cloud_is_cannot_connect(
    loopback: None, make_provider: MakeProvider
) -> None:
    """Nobody listening at the API URL raises CannotConnect from the login."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make_provider("climkit", api_url=f"http://127.0.0.1:{port}/api/v1")
    with pytest.raises(CannotConnect):
        await provider.async_login()


@pytest.mark.parametrize(
    "action",
    [list_sites, discover, latest("meter_data"), latest("sensor_data")],
    ids=["list_sites", "discover", "latest", "sensor"],
)
async def test_malformed_json_is_invalid_response(
    simulator: Simulator,
    climkit: ClimkitProvider,
    inventory: Inventory,
    action: Action,
) -> None:
    """A body that is not JSON raises InvalidResponse."""
    simulator.faults.add("malformed_json")
    with pytest.raises(InvalidResponse):
        await action(climkit, inventory)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("^/meter_data/", latest("meter_data")),
        ("^/meter_data/", history("meter_data")),
        ("^/meter_data_raw/", latest("meter_data_raw")),
        ("^/site_data/", latest("site_data")),
        ("^/site_data/", history("site_data")),
        ("^/meter_info/", discover),
        ("^/all_installations", list_sites),
        ("^/all_installations", discover),
        ("sensors_list", discover),
        ("sensor_data", latest("sensor_data")),
    ],
    ids=[
        "meter_data",
        "meter_data-history",
        "meter_data_raw",
        "site_data",
        "site_data-history",
        "meter_info",
        "all_installations",
        "all_installations-discover",
        "sensors_list",
        "sensor_data",
    ],
)
async def test_rows_missing_fields_are_left_out(
    simulator: Simulator,
    climkit: ClimkitProvider,
    inventory: Inventory,
    path: str,
    action: Action,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows that lost their ids or timestamps are left out, counted, logged once.

    The rows that kept theirs (but lost their values) give no value, never a 0; the
    call itself succeeds: one broken row is no reason to lose the others.
    """
    simulator.faults.add("missing_fields", path=path)
    result = await action(climkit, inventory)
    assert simulator.faults.pending == []
    assert climkit.refusals.total > 0
    items = (
        result.channels
        if isinstance(result, Inventory)
        else result.values()
        if isinstance(result, dict)
        else result
    )
    assert not any(getattr(item, "value", None) == 0 for item in items)
    warnings = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("Climkit sent data that was left out: ")


async def test_missing_fields_in_string_installations(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """Emptied id strings in /all_installations are no sites (and no request)."""
    simulator.climkit.all_installations_shape = "strings"
    simulator.faults.add("missing_fields", path="^/all_installations")
    assert await climkit.async_list_sites() == ()
    assert climkit.refusals.total == len(SITES)


async def test_missing_token_in_login(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """An /auth answer without access_token raises InvalidResponse."""
    simulator.faults.add("missing_fields", path="^/auth$")
    with pytest.raises(InvalidResponse):
        await climkit.async_login()


async def test_http_401_once_is_renewed(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """One surprise 401 costs one more login, and the call succeeds."""
    await climkit.async_login()
    simulator.faults.add("http_401", path="all_installations")
    sites = await climkit.async_list_sites()
    assert len(sites) == len(SITES)
    assert [(r.path, r.status) for r in simulator.log_for("climkit")] == [
        ("/auth", 200),
        ("/all_installations", 401),
        ("/auth", 200),
        ("/all_installations", 200),
    ]


async def test_http_401_persistent_is_refused_access(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """A path that refuses even a token fresh from a good login refuses the resource.

    The credentials work (/auth accepted them): it is not a reason to ask the user for
    a password, only that this account may not read that path.
    """
    await climkit.async_login()
    simulator.faults.add("http_401", count=10, path="all_installations")
    with pytest.raises(RequestRejected) as caught:
        await climkit.async_list_sites()
    assert caught.value.status == 403
    assert [(r.path, r.status) for r in simulator.log_for("climkit")] == [
        ("/auth", 200),
        ("/all_installations", 401),
        ("/auth", 200),
        ("/all_installations", 401),
    ]


async def test_http_429_once_is_retried(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """One 429 pauses for its Retry-After (1 s), then the same request succeeds."""
    await climkit.async_login()
    simulator.faults.add("http_429", path="all_installations")
    assert len(await climkit.async_list_sites()) == len(SITES)
    log = [r for r in simulator.log_for("climkit") if r.path == "/all_installations"]
    assert [r.status for r in log] == [429, 200]
    assert log[1].at - log[0].at >= 1.0
    assert climkit.state.limiter.throttled == 1


async def test_http_429_many_is_rate_limited(
    simulator: Simulator, climkit: ClimkitProvider
) -> None:
    """429 after 429 ends in RateLimited, telling the caller to wait Retry-After."""
    await climkit.async_login()
    simulator.faults.add("http_429", count=10, path="all_installations")
    with pytest.raises(RateLimited) as caught:
        await climkit.async_list_sites()
    assert caught.value.retry_after >= 1
    statuses = [r.status for r in simulator.log_for("climkit") if r.path != "/auth"]
    assert statuses == [429, 429, 429]
    assert climkit.state.limiter.paused_for > 0
