"""The FlexMeasures provider against a real FlexMeasures 1.0.1 server.

Ground truth is what the server holds, read here with plain aiohttp at each sensor's
own resolution and summed by hand: never through the code under test.
"""

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    RequestRejected,
    UnsupportedServer,
)
from custom_components.cloud_energy_meters.providers.flexmeasures import (
    FlexMeasuresProvider,
)
from custom_components.cloud_energy_meters.providers.model import (
    Kind,
    Quantity,
    Role,
    Unit,
)
from custom_components.cloud_energy_meters.providers.provider import AccountState
from tests.flexmeasures_real import FlexMeasuresServer, FlexMeasuresUser

pytestmark = pytest.mark.usefixtures("loopback")

HOUSE, BATTERY = "Demo house", "Home battery"
QUARTER = timedelta(minutes=15)


def provider_for(
    session: ClientSession,
    server: FlexMeasuresServer,
    user: FlexMeasuresUser | None = None,
    **credentials: Any,
) -> FlexMeasuresProvider:
    """Return a provider signed in as `user` (the demo user), changed as asked."""
    user = user or server.demo
    return FlexMeasuresProvider(
        session,
        api_url=server.url,
        credentials={"email": user.email, "password": user.password, "server": ""}
        | credentials,
        state=AccountState.for_policy(FlexMeasuresProvider.policy),
    )


async def raw_values(
    session: ClientSession,
    server: FlexMeasuresServer,
    sensor: int,
    start: datetime,
    end: datetime,
    unit: str,
) -> list[float | None]:
    """Read a sensor's stored values with plain aiohttp (the truth)."""
    async with session.post(
        f"{server.url}/api/requestAuthToken",
        json={"email": server.demo.email, "password": server.demo.password},
    ) as resp:
        token = (await resp.json())["auth_token"]
    minutes = int((end - start).total_seconds() // 60)
    async with session.get(
        f"{server.url}/api/v3_0/sensors/{sensor}/data",
        params={
            "start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "duration": f"PT{minutes}M",
            "unit": unit,
        },
        headers={"Authorization": token},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["values"])


async def test_sign_in_names_the_account_by_server_and_user(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """The account id is the server's address and the user's id: no secret."""
    provider = provider_for(session, flexmeasures_real)
    account = await provider.async_login()
    server = flexmeasures_real.url.removeprefix("http://")
    assert account.id == f"{server}:{flexmeasures_real.demo.user_id}"
    assert account.name == flexmeasures_real.demo.email
    assert provider.learned == {"server": server}
    assert flexmeasures_real.demo.password not in account.id


@pytest.mark.parametrize(
    "credentials",
    [{"password": "not-the-password"}, {"email": "nobody@example.com"}],
    ids=["wrong password (401)", "unknown e-mail (404)"],
)
async def test_refused_sign_ins(
    session: ClientSession,
    flexmeasures_real: FlexMeasuresServer,
    credentials: dict[str, str],
) -> None:
    """A wrong password and an unknown e-mail are both refused credentials."""
    with pytest.raises(AuthError):
        await provider_for(session, flexmeasures_real, **credentials).async_login()


async def test_an_address_that_is_no_flexmeasures_api(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """A page of the server that is not its root answers HTML: unsupported."""
    provider = FlexMeasuresProvider(
        session,
        api_url=f"{flexmeasures_real.url}/api/v3_0",
        credentials={"email": "x", "password": "y", "server": ""},
        state=AccountState.for_policy(FlexMeasuresProvider.policy),
    )
    with pytest.raises(UnsupportedServer):
        await provider.async_login()


async def test_discovery_of_assets_children_and_sensors(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """Top-level assets are sites, children devices; each sensor its channels."""
    server = flexmeasures_real
    provider = provider_for(session, server)
    await provider.async_login()
    sites = await provider.async_list_sites()
    prefix = server.url.removeprefix("http://")
    house_id = f"{prefix}:{server.assets[HOUSE]}"
    assert [(s.id, s.name) for s in sites] == [(house_id, HOUSE)]
    before = provider.state.limiter.requests
    inventory = await provider.async_discover([house_id])
    assert provider.state.limiter.requests - before == 2  # assets, sensors
    (house,) = inventory.sites
    assert house.timezone == "Europe/Amsterdam"
    (battery,) = inventory.devices
    assert (battery.name, battery.site_id, battery.parent_id) == (
        BATTERY,
        house_id,
        None,
    )
    by_key = {channel.key: channel for channel in inventory.channels}

    def key(asset: str, sensor: str, way: str = "") -> str:
        base = f"{prefix}:{server.sensor(asset, sensor)}"
        return f"{base}:{way}" if way else base

    grid = by_key[key(HOUSE, "grid power")]
    assert (grid.quantity, grid.kind, grid.unit) == (
        Quantity.POWER,
        Kind.INSTANT,
        Unit.KW,
    )
    # consumption_is_positive: true → positive values are the grid import.
    assert by_key[key(HOUSE, "grid power", "in")].role is Role.GRID_IMPORT
    assert by_key[key(HOUSE, "grid power", "out")].role is Role.GRID_EXPORT
    price = by_key[key(HOUSE, "day-ahead price")]
    assert (price.quantity, price.unit) == (Quantity.PRICE, "EUR/kWh")
    temperature = by_key[key(HOUSE, "indoor temperature")]
    assert (temperature.quantity, temperature.unit) == (
        Quantity.TEMPERATURE,
        Unit.CELSIUS,
    )
    soc = by_key[key(BATTERY, "state of charge")]
    assert (soc.quantity, soc.device_id) == (Quantity.STATE_OF_CHARGE, battery.id)
    charging = by_key[key(BATTERY, "battery power", "in")]
    assert (charging.role, charging.device_id) == (Role.BATTERY_CHARGE, battery.id)
    meter = by_key[key(HOUSE, "energy meter", "in")]
    assert (meter.kind, meter.unit, meter.history) == (Kind.INTERVAL, Unit.KWH, True)
    assert key(HOUSE, "energy meter") not in by_key  # energy is told per direction
    assert len({c.statistic for c in inventory.channels if c.statistic}) == len(
        [c for c in inventory.channels if c.statistic]
    )


async def test_latest_values_are_what_the_server_holds(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """One request per sensor: the newest value begun; the last hour's energy."""
    server = flexmeasures_real
    provider = provider_for(session, server)
    await provider.async_login()
    (site,) = await provider.async_list_sites()
    inventory = await provider.async_discover([site.id])
    before = provider.state.limiter.requests
    now = datetime.now(UTC)
    latest = await provider.async_latest(inventory.channels)
    assert provider.state.limiter.requests - before == provider.refresh_cost(
        inventory.channels
    )
    prefix = server.url.removeprefix("http://")
    grid = server.sensor(HOUSE, "grid power")
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    truth = await raw_values(session, server, grid, hour, hour + 2 * QUARTER * 4, "kW")
    begun = [v for i, v in enumerate(truth) if hour + i * QUARTER <= now]
    newest = next(v for v in reversed(begun) if v is not None)
    assert latest.readings[f"{prefix}:{grid}"].value == pytest.approx(newest)
    last_hour = truth[:4]
    if None not in last_hour:
        imported = sum(max(0.0, v) * 0.25 for v in last_hour if v is not None)
        exported = sum(max(0.0, -v) * 0.25 for v in last_hour if v is not None)
        assert latest.readings[f"{prefix}:{grid}:in"].value == pytest.approx(imported)
        assert latest.readings[f"{prefix}:{grid}:out"].value == pytest.approx(exported)
    price = server.sensor(HOUSE, "day-ahead price")
    now_hour = now.replace(minute=0, second=0, microsecond=0)
    (per_mwh,) = await raw_values(
        session, server, price, now_hour, now_hour + timedelta(hours=1), "EUR/MWh"
    )
    # The price of the hour we are in, per kWh: not tomorrow's last one.
    assert latest.readings[f"{prefix}:{price}"].value == pytest.approx(per_mwh / 1000)


async def test_hourly_energy_across_the_dst_change(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """Each direction's energy per UTC hour equals the server's values summed by us.

    The server would average 15-minute energy into an hour; gaps stay absent.
    """
    server = flexmeasures_real
    provider = provider_for(session, server)
    await provider.async_login()
    (site,) = await provider.async_list_sites()
    inventory = await provider.async_discover([site.id])
    grid = server.sensor(HOUSE, "grid power")
    start, end = server.dst.start.astimezone(UTC), server.dst.end.astimezone(UTC)
    truth = await raw_values(session, server, grid, start, end, "kW")
    assert len(truth) == (end - start) // QUARTER  # 25 local hours on the change day
    expected: dict[str, dict[datetime, float]] = {"in": {}, "out": {}}
    for index, value in enumerate(truth):
        if value is None:
            continue
        hour = (start + index * QUARTER).replace(minute=0)
        for way, sign in (("in", 1), ("out", -1)):
            expected[way][hour] = expected[way].get(hour, 0.0) + max(
                0.0, sign * value * 0.25
            )
    assert server.dst.null_hour.astimezone(UTC) not in expected["in"]
    for way in ("in", "out"):
        channel = next(
            c
            for c in inventory.channels
            if c.key == f"{site.id.rpartition(':')[0]}:{grid}:{way}"
        )
        hours: dict[datetime, float] = defaultdict(float)
        async for batch in provider.async_history(channel, start, end):
            for interval in batch:
                assert interval.value >= 0
                hours[interval.start.replace(minute=0)] += interval.value
        assert hours.keys() == expected[way].keys()
        for hour, value in expected[way].items():
            assert hours[hour] == pytest.approx(value), hour


async def test_a_sensor_of_another_account_is_gone(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """403 INVALID_SENDER on a sensor: its channels are reported gone, not failed."""
    server = flexmeasures_real
    theirs = provider_for(session, server, server.other)
    await theirs.async_login()
    (site,) = await theirs.async_list_sites()
    their_channels = (await theirs.async_discover([site.id])).channels
    ours = provider_for(session, server)
    await ours.async_login()
    latest = await ours.async_latest(their_channels)
    assert latest.gone == {channel.key for channel in their_channels}


async def test_post_values_and_read_them_back(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """200 PROCESSED, then the same again ALREADY_RECEIVED; the server stores them."""
    server = flexmeasures_real
    provider = provider_for(session, server)
    await provider.async_login()
    target = str(server.sensor(HOUSE, "power from Home Assistant"))
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    values = [1.5, None, 2.25, 3.0]
    posted = await provider.async_post(target, start, QUARTER, values, "kW")
    assert (posted.values, posted.statuses) == (3, ("PROCESSED",))
    again = await provider.async_post(target, start, QUARTER, values, "kW")
    assert again.statuses == ("ALREADY_RECEIVED_AND_SUCCESSFULLY_PROCESSED",)
    stored = await raw_values(
        session, server, int(target), start, start + 4 * QUARTER, "kW"
    )
    assert stored == values
    data = await provider.async_sensor_data(
        target, start, timedelta(hours=1), "kW", timedelta(hours=1)
    )
    assert data.values == (pytest.approx((1.5 + 2.25 + 3.0) / 3),)


async def test_posts_the_server_refuses_say_why(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """403 for another account's sensor, 422 for a unit the sensor cannot take."""
    server = flexmeasures_real
    provider = provider_for(session, server)
    await provider.async_login()
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    theirs = str(server.sensor("Other battery", "battery power"))
    with pytest.raises(RequestRejected) as refused:
        await provider.async_post(theirs, start, QUARTER, [1.0], "kW")
    assert refused.value.status == 403
    assert "cannot be authorized" in refused.value.detail
    ours = str(server.sensor(HOUSE, "power from Home Assistant"))
    with pytest.raises(RequestRejected) as refused:
        await provider.async_post(ours, start, QUARTER, [1.0], "EUR/MWh")
    assert refused.value.status == 422
    assert "Required unit for this sensor is kW" in refused.value.detail


async def test_with_a_worker_a_post_is_a_job_followed_to_its_end(
    session: ClientSession, flexmeasures_real_worker: FlexMeasuresServer
) -> None:
    """202 + job: followed until the worker stored the values."""
    server = flexmeasures_real_worker
    provider = provider_for(session, server)
    await provider.async_login()
    target = str(server.sensor(HOUSE, "energy from Home Assistant"))
    start = datetime(2026, 1, 6, 10, tzinfo=UTC)
    posted = await provider.async_post(
        target, start, timedelta(hours=1), [0.5, 0.75], "kWh"
    )
    assert posted.statuses == ("FINISHED",)
    assert len(posted.jobs) == 1
    stored = await raw_values(
        session, server, int(target), start, start + timedelta(hours=2), "kWh"
    )
    assert stored == [0.5, 0.75]


async def test_an_expired_token_is_renewed_once(
    session: ClientSession, flexmeasures_real_worker: FlexMeasuresServer
) -> None:
    """The worker server's tokens last seconds: a later read signs in again, silently."""
    server = flexmeasures_real_worker
    provider = provider_for(session, server)
    await provider.async_login()
    (site,) = await provider.async_list_sites()
    renewals = provider.state.tokens.renewals
    await asyncio.sleep(server.token_max_age + 2)
    inventory = await provider.async_discover([site.id])
    assert inventory.sites
    assert provider.state.tokens.renewals == renewals + 1
