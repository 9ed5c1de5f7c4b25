"""The FlexMeasures provider against the simulator: what one real server cannot show.

Paged listings, the 500-per-minute window and its 429, Retry-After on every answer,
revoked tokens, faults, servers without API v3_0, and history exactly as the
simulator's ground truth (`truth_values`) says, summed by hand.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
import json

from aiohttp import ClientSession, web
import pytest

from custom_components.cloud_energy_meters.providers.errors import (
    CannotConnect,
    InvalidResponse,
    RequestRejected,
    UnsupportedServer,
)
from custom_components.cloud_energy_meters.providers.flexmeasures import (
    FlexMeasuresProvider,
)
from custom_components.cloud_energy_meters.providers.model import Channel
from tests.provider_factory import MakeProvider, build_provider
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.flexmeasures_data import (
    BATTERY_ASSET_ID,
    BATTERY_POWER,
    ENERGY_METER,
    GARAGE_ID,
    GRID_POWER,
    HA_ENERGY,
    HA_POWER,
    HOUSE_ID,
    PRICE,
    SOLAR_POWER,
)
from tests.stub import StubServer

NOW = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)


@pytest.fixture
def fm(make_provider: MakeProvider) -> FlexMeasuresProvider:
    """Return a provider of the simulator's demo user (not signed in yet)."""
    return make_provider("flexmeasures")  # type: ignore[no-any-return]


def _server(simulator: Simulator) -> str:
    return simulator.url("flexmeasures").split("://", 1)[1].split("/", 1)[0]


async def _channels(fm: FlexMeasuresProvider, simulator: Simulator) -> list[Channel]:
    await fm.async_login()
    server = _server(simulator)
    inventory = await fm.async_discover(
        [f"{server}:{HOUSE_ID}", f"{server}:{GARAGE_ID}"]
    )
    return list(inventory.channels)


async def test_sites_are_top_level_assets_even_when_paged(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """A server that pages its asset list by default is read the same way."""
    await fm.async_login()
    plain = await fm.async_list_sites()
    simulator.flexmeasures.always_paged_assets = True
    paged = await fm.async_list_sites()
    server = _server(simulator)
    assert [site.id for site in plain] == [
        f"{server}:{HOUSE_ID}",
        f"{server}:{GARAGE_ID}",
    ]
    assert paged == plain
    inventory = await fm.async_discover([plain[0].id])
    assert [d.id for d in inventory.devices] == [f"{server}:{BATTERY_ASSET_ID}"]
    assert inventory.listed == tuple(site.id for site in plain)


async def test_solar_production_is_positive_when_the_sensor_says_so(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """consumption_is_positive false: the positive direction is production."""
    channels = {c.key: c for c in await _channels(fm, simulator)}
    server = _server(simulator)
    production = channels[f"{server}:{SOLAR_POWER}:out"]
    assert (production.role.value, production.ref[2]) == ("production", "1")
    consumption = channels[f"{server}:{SOLAR_POWER}:in"]
    assert (consumption.role.value, consumption.ref[2]) == ("consumption", "-1")


async def test_a_powers_energy_is_not_called_power(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """Energy each way of a power sensor says "energy"; the power keeps its name.

    A power whose energy would take the name of an energy sensor of the same asset
    ("power from Home Assistant" and "energy from Home Assistant") says where it
    comes from.
    """
    channels = {c.key: c.name for c in await _channels(fm, simulator)}
    server = _server(simulator)

    def name(sensor: int, way: str = "") -> str:
        return channels[f"{server}:{sensor}:{way}" if way else f"{server}:{sensor}"]

    assert name(GRID_POWER) == "grid power"
    assert (name(GRID_POWER, "in"), name(GRID_POWER, "out")) == (
        "grid energy import",
        "grid energy export",
    )
    assert name(SOLAR_POWER, "out") == "solar energy production"
    assert name(BATTERY_POWER, "in") == "battery energy charging"
    assert name(ENERGY_METER, "in") == "energy meter consumption"
    assert name(HA_ENERGY, "in") == "energy from Home Assistant consumption"
    assert name(HA_POWER, "in") == (
        "energy from Home Assistant (from power) consumption"
    )
    split = [n for k, n in channels.items() if k.endswith((":in", ":out"))]
    assert split
    assert not [n for n in split if "power" in n.split()]


@pytest.mark.freeze_time(NOW)
async def test_history_equals_the_truth_summed_by_hour(
    fm: FlexMeasuresProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Each direction: kW × ¼ h per quarter, split by sign, summed by UTC hour."""
    channels = {c.key: c for c in await _channels(fm, simulator)}
    server = _server(simulator)
    start, end = NOW - timedelta(days=3), NOW.replace(minute=0)
    truth = simulator.flexmeasures.truth_values(GRID_POWER, start, end)
    assert None in truth.values()  # a gap, which must stay absent
    before = fm.state.limiter.requests
    for way, sign in (("in", 1), ("out", -1)):
        expected: dict[datetime, float] = defaultdict(float)
        for moment, value in truth.items():
            if value is not None:
                expected[moment.replace(minute=0)] += max(0.0, sign * value * 0.25)
        found: dict[datetime, float] = defaultdict(float)
        async for batch in fm.async_history(
            channels[f"{server}:{GRID_POWER}:{way}"], start, end
        ):
            for interval in batch:
                found[interval.start.replace(minute=0)] += interval.value
        assert found.keys() == expected.keys()
        for hour, value in expected.items():
            assert found[hour] == pytest.approx(value, abs=1e-12), hour
    # Three days in one request: the second direction reuses the first's read.
    assert fm.state.limiter.requests - before == 1


@pytest.mark.freeze_time(NOW)
async def test_latest_price_is_the_current_hours_per_kwh(
    fm: FlexMeasuresProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """Tomorrow's prices are known; the one shown is this hour's, in EUR/kWh."""
    channels = await _channels(fm, simulator)
    latest = await fm.async_latest(channels)
    hour = NOW.replace(minute=0)
    (per_mwh,) = simulator.flexmeasures.truth_values(
        PRICE, hour, hour + timedelta(hours=1)
    ).values()
    assert per_mwh is not None
    price = latest.readings[f"{_server(simulator)}:{PRICE}"]
    assert price.value == pytest.approx(per_mwh / 1000)
    assert fm.state.limiter.requests == 2 + 2 + fm.refresh_cost(channels)


async def test_retry_after_on_every_answer_is_no_pause(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """The server sends Retry-After with 200s: only a 429 means "wait"."""
    channels = await _channels(fm, simulator)
    await fm.async_latest(channels)
    assert fm.state.limiter.paused_for == 0
    assert fm.state.limiter.throttled == 0


async def test_the_fixed_window_429_is_waited_out(
    make_provider: MakeProvider, simulator: Simulator
) -> None:
    """Past the window's limit the server answers 429; the next window serves."""
    cloud = simulator.flexmeasures
    cloud.enforce_rate_limits = True
    cloud.rate_limit = 6
    cloud.rate_window = timedelta(seconds=1)
    fm = make_provider("flexmeasures")
    channels = await _channels(fm, simulator)
    latest = await fm.async_latest(channels)
    assert latest.readings
    assert fm.state.limiter.throttled >= 1
    assert any(record.status == 429 for record in simulator.log)


async def test_a_revoked_token_is_renewed_silently(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """401 on a data request: one new token, the request again, no error."""
    channels = await _channels(fm, simulator)
    renewals = fm.state.tokens.renewals
    simulator.flexmeasures.revoke_tokens()
    assert (await fm.async_latest(channels)).readings
    assert fm.state.tokens.renewals == renewals + 1


@pytest.mark.parametrize(
    ("versions", "error"),
    [((), UnsupportedServer), (("v2_0",), UnsupportedServer)],
)
async def test_a_server_without_api_v3(
    fm: FlexMeasuresProvider,
    simulator: Simulator,
    versions: tuple[str, ...],
    error: type[Exception],
) -> None:
    """A server listing no version this client speaks is refused clearly."""
    simulator.flexmeasures.api_versions = versions
    with pytest.raises(error):
        await fm.async_login()


@pytest.mark.parametrize(
    ("kind", "error"),
    [("http_500", CannotConnect), ("malformed_json", InvalidResponse)],
)
async def test_faults_while_reading(
    fm: FlexMeasuresProvider,
    simulator: Simulator,
    kind: str,
    error: type[Exception],
) -> None:
    """A 500 or a broken body fails the refresh as the other clouds' do."""
    channels = await _channels(fm, simulator)
    simulator.faults.add(kind, cloud="flexmeasures")
    with pytest.raises(error):
        await fm.async_latest(channels)
    assert (await fm.async_latest(channels)).readings


async def test_ids_follow_the_server_the_entry_first_met(
    make_provider: MakeProvider, simulator: Simulator
) -> None:
    """A server that moved keeps its ids: they hold the address first signed in to."""
    fm = make_provider("flexmeasures", server="fm.old.example")
    account = await fm.async_login()
    assert account.id == "fm.old.example:1"
    assert fm.learned == {}
    sites = await fm.async_list_sites()
    assert [site.id for site in sites] == [
        f"fm.old.example:{HOUSE_ID}",
        f"fm.old.example:{GARAGE_ID}",
    ]


@pytest.mark.freeze_time(NOW)
async def test_an_old_server_speaking_v1_1(
    fm: FlexMeasuresProvider, simulator: Simulator, sim_clock: FakeClock
) -> None:
    """v1.1: connections are sites; MW, consumption positive (USEF); kW × ¼ h."""
    simulator.flexmeasures.api_versions = ("v1_1",)
    await fm.async_login()
    sites = {site.name: site for site in await fm.async_list_sites()}
    grid = sites["grid power"]
    inventory = await fm.async_discover([grid.id])
    assert [site.id for site in inventory.sites] == [grid.id]
    assert set(inventory.listed) == {site.id for site in sites.values()}
    by_way = {channel.key.rsplit(":", 1)[-1]: channel for channel in inventory.channels}
    power = next(c for c in inventory.channels if c.kind.value == "instant")
    latest = await fm.async_latest(inventory.channels)
    truth = simulator.flexmeasures.truth_values(
        GRID_POWER, NOW - timedelta(hours=2), NOW
    )
    newest = [v for moment, v in sorted(truth.items()) if v is not None][-1]
    assert latest.readings[power.key].value == pytest.approx(newest)
    start, end = NOW - timedelta(days=2), NOW.replace(minute=0)
    truth = simulator.flexmeasures.truth_values(GRID_POWER, start, end)
    for way, sign in (("in", 1), ("out", -1)):
        expected: dict[datetime, float] = defaultdict(float)
        for moment, value in truth.items():
            if value is not None:
                expected[moment.replace(minute=0)] += max(0.0, sign * value * 0.25)
        found: dict[datetime, float] = defaultdict(float)
        async for batch in fm.async_history(by_way[way], start, end):
            for interval in batch:
                found[interval.start.replace(minute=0)] += interval.value
        assert found.keys() == expected.keys()
        for hour, value in expected.items():
            assert found[hour] == pytest.approx(value, abs=1e-9), hour


def _paged_server(stub: StubServer, assets: int, served: int, claimed: int) -> None:
    """Serve assets always paged: 10 a page unless asked, `served` at most."""
    stub.json("GET", "/api/", {"versions": ["v3_0"]})
    stub.json("POST", "/api/requestAuthToken", {"auth_token": "t0ken", "user_id": 1})
    rows = [
        {"id": i, "name": f"Asset {i}", "parent_asset_id": None} for i in range(assets)
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        size = min(int(request.query.get("per-page", "10")), served)
        page = int(request.query.get("page", "1"))
        data = rows[(page - 1) * size : page * size]
        return web.json_response(
            {"data": data, "filtered-records": claimed, "num-records": claimed}
        )

    stub.on("GET", "/api/v3_0/assets", handler)


async def test_a_server_that_pages_unasked_is_read_whole(
    stub: StubServer, session: ClientSession
) -> None:
    """Its first page holds 10: the listing is read again at 100 a page, to its end."""
    _paged_server(stub, assets=124, served=100, claimed=124)
    fm = build_provider("flexmeasures", session, api_url=stub.url)
    await fm.async_login()
    assert len(await fm.async_list_sites()) == 124
    assets = [r for r in stub.requests if r[1] == "/api/v3_0/assets"]
    assert len(assets) == 3  # unasked, then two pages of ours


async def test_a_server_that_claims_more_than_it_sends(
    stub: StubServer, session: ClientSession
) -> None:
    """3,000 records claimed, one a page: a short page ends the listing."""
    _paged_server(stub, assets=3000, served=1, claimed=3000)
    fm = build_provider("flexmeasures", session, api_url=stub.url)
    await fm.async_login()
    assert len(await fm.async_list_sites()) == 1
    assert len([r for r in stub.requests if r[1] == "/api/v3_0/assets"]) == 2


async def test_sending_to_an_old_server(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """v1.1 postMeterData: kW become MW, energy per quarter its mean power."""
    simulator.flexmeasures.api_versions = ("v1_1",)
    await fm.async_login()
    grid = {site.name: site for site in await fm.async_list_sites()}["grid power"]
    address = grid.id.split(":", 2)[2]
    info = await fm.async_sensor(address)
    assert (info.unit, info.resolution) == ("MW", timedelta(minutes=15))
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    posted = await fm.async_post(address, start, info.resolution, [2.5, None], "kW")
    assert posted.values == 1
    await fm.async_post(
        address, start + 2 * info.resolution, info.resolution, [0.5], "kWh"
    )
    assert simulator.flexmeasures.truth_posted(GRID_POWER) == {
        start: pytest.approx(2.5),
        start + 2 * info.resolution: pytest.approx(2.0),
    }
    with pytest.raises(RequestRejected):
        await fm.async_post(address, start, info.resolution, [1.0], "EUR/MWh")


async def test_a_long_post_goes_in_chunks_below_the_size_limit(
    fm: FlexMeasuresProvider, simulator: Simulator
) -> None:
    """3.5 MB of values in one body would be refused (413): they go in five."""
    await fm.async_login()
    start = datetime(2020, 1, 1, tzinfo=UTC)
    values = [1.23456789012345 + i % 7 for i in range(210_000)]
    assert len(json.dumps({"values": values})) > 3_250_586  # one body: a 413
    posted = await fm.async_post(
        str(HA_POWER), start, timedelta(minutes=15), values, "kW"
    )
    assert posted.values == len(values)
    posts = [
        r
        for r in simulator.log_for("flexmeasures")
        if r.method == "POST" and r.path.endswith(f"/sensors/{HA_POWER}/data")
    ]
    assert [r.status for r in posts] == [200] * 5
    stored = simulator.flexmeasures.truth_posted(HA_POWER)
    assert len(stored) == len(values)
    assert stored[start + 209_999 * timedelta(minutes=15)] == values[-1]
