"""Tests of the cloud simulator itself (tests/simulator), FlexMeasures part.

The simulated server must answer like a real FlexMeasures 1.0.1
(shared/providers/FLEXMEASURES-REAL.md): shapes, headers, error codes per
endpoint, resampling and unit rules, the belief rules of POST, jobs, schedules,
rate limits, the sunset v1.1 and an old v1.1 server. Driven over real HTTP.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import signal
import subprocess
import sys
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from multidict import CIMultiDictProxy
import pytest
import pytest_socket

from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.flexmeasures import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    OTHER_EMAIL,
    OTHER_PASSWORD,
)
from tests.simulator.flexmeasures_data import (
    BATTERY_ASSET_ID,
    BATTERY_POWER,
    ENERGY_METER,
    GARAGE_ID,
    GRID_POWER,
    HA_ENERGY,
    HA_POWER,
    HOUSE_ID,
    OTHER_ASSET_ID,
    OTHER_POWER,
    PRICE,
    SOLAR_POWER,
    STATE_OF_CHARGE,
    TEMPERATURE,
    gap_hour,
)
from tests.simulator.process import ROOT

pytestmark = pytest.mark.usefixtures("socket_enabled")

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(
    2026, 3, 30, 10, 7, 30, tzinfo=UTC
)  # the day after the spring DST change
V3 = "/api/v3_0"
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class Reply:
    """What the simulator answered."""

    status: int
    body: Any
    headers: CIMultiDictProxy[str]
    text: str


@dataclass
class Api:
    """A tiny FlexMeasures client for the tests: raw requests, no validation."""

    session: aiohttp.ClientSession
    sim: Simulator
    token: str | None = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send a request below the server root with the raw token, if any."""
        sent = dict(headers or {})
        if self.token is not None and "Authorization" not in sent:
            sent["Authorization"] = self.token
        async with self.session.request(
            method,
            f"{self.sim.url('flexmeasures')}{path}",
            params=params,
            json=json_body,
            data=data,
            headers=sent,
        ) as response:
            text = await response.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return Reply(response.status, body, response.headers, text)

    async def get(self, path: str, **params: str) -> Reply:
        """GET with query parameters."""
        return await self.call("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> Reply:
        """POST a JSON body."""
        return await self.call("POST", path, json_body=body)

    async def login(
        self, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD
    ) -> str:
        """Request a token and keep it."""
        reply = await self.post(
            "/api/requestAuthToken", {"email": email, "password": password}
        )
        assert reply.status == 200, reply.body
        self.token = reply.body["auth_token"]
        return str(self.token)

    async def data(
        self, sensor: int, start: str, duration: str, unit: str, **more: str
    ) -> Reply:
        """GET sensor data."""
        return await self.get(
            f"{V3}/sensors/{sensor}/data",
            start=start,
            duration=duration,
            unit=unit,
            **more,
        )

    async def send(
        self,
        sensor: int,
        values: list[Any],
        start: str,
        duration: str,
        unit: str,
        **more: Any,
    ) -> Reply:
        """POST sensor data."""
        body = {"values": values, "start": start, "duration": duration, "unit": unit}
        return await self.post(f"{V3}/sensors/{sensor}/data", {**body, **more})


@pytest.fixture(autouse=True)
def allow_loopback() -> None:
    """Let the tests reach the simulator on the loopback interface only."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)


@pytest.fixture
def clock() -> FakeClock:
    """Time frozen the day after the spring DST change of 2026 in Europe."""
    return FakeClock(NOW)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """Run a simulator with the documented defaults."""
    simulator = Simulator(now=clock)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    """Return an unauthenticated client."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim)


@pytest.fixture
async def demo(api: Api) -> Api:
    """Return a client signed in as the demo user."""
    await api.login()
    return api


def local(text: str) -> datetime:
    """Parse a local Amsterdam wall time."""
    return datetime.fromisoformat(text).replace(tzinfo=AMS)


# --------------------------------------------------------------------------- discovery


async def test_discovery_answers_and_headers(api: Api) -> None:
    """/api lists v3_0 with sorted, indented JSON; health is exempt; HTML for the rest."""
    for path in ("/api/", "/api"):
        reply = await api.get(path)
        assert reply.status == 200
        assert reply.body["versions"] == ["v3_0"]
        assert reply.body["status"] == 200
        assert reply.body["flexmeasures_version"] == "1.0.1"
        assert reply.text.startswith('{\n  "flexmeasures_version"')
        assert reply.headers["FlexMeasures-Version"] == "1.0.1"
        assert "API-Version" not in reply.headers
        for header in (*RATE_HEADERS, "Retry-After"):
            assert header in reply.headers
    services = await api.get(V3)
    assert services.headers["API-Version"] == "v3_0"
    names = {service["name"] for service in services.body["services"]}
    assert {"GET /sensors/<id>/data", "POST /sensors/<id>/schedules/trigger"} <= names
    assert services.body["services"][0]["url"] == f"{api.sim.url('flexmeasures')}{V3}"
    health = await api.get(f"{V3}/health/ready")
    assert health.body == {"database_sql": True, "status": 200}
    assert "Retry-After" not in health.headers
    for path, status in ((f"{V3}/nothing-here", 404), ("/api/v3_1/sensors", 404)):
        page = await api.get(path)
        assert page.status == status
        assert page.headers["Content-Type"].startswith("text/html")
        assert "The page you are looking for cannot be found." in page.text
        assert "Retry-After" not in page.headers
    wrong = await api.get("/api/requestAuthToken")
    assert wrong.status == 405
    assert "We encountered an Http exception." in wrong.text


# --------------------------------------------------------------------------- tokens


async def test_request_auth_token_answers(api: Api, sim: Simulator) -> None:
    """200 with a ~150 character token; 401, 404, 422 (JSON and form), 400 broken JSON."""
    token = await api.login()
    assert 120 <= len(token) <= 180
    ok = await api.post(
        "/api/requestAuthToken", {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    assert ok.body["user_id"] == 1 and ok.body["status"] == 200
    wrong = await api.post(
        "/api/requestAuthToken", {"email": DEMO_EMAIL, "password": "x"}
    )
    assert (wrong.status, wrong.body) == (
        401,
        {"errors": ["User password does not match."], "status": 401},
    )
    nobody = await api.post(
        "/api/requestAuthToken", {"email": "nobody@example.com", "password": "x"}
    )
    assert nobody.status == 404
    assert nobody.body["errors"] == [
        "User with email 'nobody@example.com' does not exist"
    ]
    missing = await api.post("/api/requestAuthToken", {"email": DEMO_EMAIL})
    assert missing.status == 422
    assert missing.body == {
        "message": {"json": {"password": ["Missing data for required field."]}},
        "result": "Rejected",
        "status": "UNPROCESSABLE_ENTITY",
    }
    form = await api.call("POST", "/api/requestAuthToken", data={"email": DEMO_EMAIL})
    assert set(form.body["message"]["json"]) == {"email", "password"}
    broken = await api.call(
        "POST",
        "/api/requestAuthToken",
        data="{broken",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status == 400
    assert broken.body["status"] == 400
    logged = sim.log_for("flexmeasures")
    assert all(
        record.body is None or record.body.get("password") in (None, "***")
        for record in logged
    )
    assert logged[0].account == DEMO_EMAIL


async def test_token_is_raw_checked_server_side_and_revocable(
    api: Api, sim: Simulator, clock: FakeClock
) -> None:
    """Raw Authorization works; Bearer, garbage, expired and revoked tokens get 401."""
    token = await api.login()
    assert (await api.get(f"{V3}/sensors/{GRID_POWER}")).status == 200
    unauthorized = {
        "message": "You could not be properly authenticated for this content or functionality.",
        "status": "UNAUTHORIZED",
    }
    for header in (f"Bearer {token}", "not-a-token"):
        reply = await api.call(
            "GET", f"{V3}/sensors/{GRID_POWER}", headers={"Authorization": header}
        )
        assert (reply.status, reply.body) == (401, unauthorized)
        assert "Retry-After" in reply.headers
    api.token = None
    query = await api.get(f"{V3}/sensors/{GRID_POWER}", auth_token=token)
    assert query.status == 200
    assert sim.log_for("flexmeasures")[-1].query["auth_token"] == "***"
    on_data = await api.data(
        GRID_POWER, "2026-03-30T00:00:00+02:00", "PT1H", "kW", auth_token=token
    )
    assert on_data.body["message"]["combined_sensor_data_description"] == {
        "auth-token": ["Unknown field."]
    }
    api.token = token
    sim.flexmeasures.token_max_age = 5
    clock.advance(timedelta(seconds=6))
    assert (await api.get(f"{V3}/sensors/{GRID_POWER}")).status == 401
    await api.login()
    sim.flexmeasures.revoke_tokens(DEMO_EMAIL)
    assert (await api.get(f"{V3}/sensors/{GRID_POWER}")).status == 401


# --------------------------------------------------------------------------- assets and sensors


async def test_assets_plain_paged_and_by_id(demo: Api, sim: Simulator) -> None:
    """Plain list of full objects, paged with page, child assets, 404 and 403."""
    plain = await demo.get(f"{V3}/assets")
    assert [asset["id"] for asset in plain.body] == [
        HOUSE_ID,
        BATTERY_ASSET_ID,
        GARAGE_ID,
    ]
    house, battery = plain.body[0], plain.body[1]
    assert house["child_assets"][0]["id"] == BATTERY_ASSET_ID
    assert battery["parent_asset_id"] == HOUSE_ID
    assert battery["generic_asset_type"]["name"] == "battery"
    assert house["owner"] == {"id": 1, "name": "Demo Prosumer"}
    assert house["attributes"] == "{}" and house["flex_context"] == "{}"
    assert {"id": HA_POWER, "name": "power from Home Assistant"} in house["sensors"]
    paged = await demo.get(f"{V3}/assets", page="2", per_page="2")
    assert paged.body == {
        "data": [plain.body[2]],
        "filtered-records": 3,
        "num-records": 3,
        "status": 200,
    }
    dashed = await demo.get(f"{V3}/assets", page="1", **{"per-page": "1"})
    assert len(dashed.body["data"]) == 1
    assert (await demo.get(f"{V3}/assets", page="0")).status == 422
    sim.flexmeasures.always_paged_assets = True
    assert (await demo.get(f"{V3}/assets")).body["num-records"] == 3
    one = await demo.get(f"{V3}/assets/{HOUSE_ID}")
    assert one.body == {**house, "status": 200}
    assert (await demo.get(f"{V3}/assets/99999")).body == {
        "message": "No asset found with ID 99999.",
        "status": 404,
    }
    foreign = await demo.get(f"{V3}/assets/{OTHER_ASSET_ID}")
    assert (foreign.status, foreign.body["status"]) == (403, "INVALID_SENDER")


async def test_sensor_listings_and_lookups(demo: Api) -> None:
    """Asset sensors always paged; /sensors plain or paged, filters; 422 vs 403."""
    of_house = await demo.get(f"{V3}/assets/{HOUSE_ID}/sensors")
    assert of_house.body["num-records"] == 7 and len(of_house.body["data"]) == 7
    grid = of_house.body["data"][0]
    assert grid == {
        "attributes": '{"consumption_is_positive": true}',
        "entity_address": f"ea1.2027-01.localhost:fm1.{GRID_POWER}",
        "event_resolution": "PT15M",
        "generic_asset_id": HOUSE_ID,
        "id": GRID_POWER,
        "name": "grid power",
        "timezone": "Europe/Amsterdam",
        "unit": "kW",
    }
    page = await demo.get(f"{V3}/assets/{HOUSE_ID}/sensors", page="2", per_page="5")
    assert [s["id"] for s in page.body["data"]] == [HA_ENERGY - 1, HA_ENERGY]
    unknown = await demo.get(f"{V3}/assets/99999/sensors")
    assert unknown.body["message"] == {
        "path": {"id": ["No asset found with ID 99999."]}
    }
    listed = await demo.get(f"{V3}/sensors")
    assert isinstance(listed.body, list) and len(listed.body) == 10
    assert OTHER_POWER not in [s["id"] for s in listed.body]
    paged = await demo.get(f"{V3}/sensors", page="1", per_page="2")
    assert paged.body["num-records"] == 10 and len(paged.body["data"]) == 2
    family = await demo.get(f"{V3}/sensors", asset_id=str(HOUSE_ID))
    assert {BATTERY_POWER, STATE_OF_CHARGE} <= {s["id"] for s in family.body}
    assert [s["id"] for s in (await demo.get(f"{V3}/sensors", unit="°C")).body] == [
        TEMPERATURE
    ]
    assert (await demo.get(f"{V3}/sensors", asset_id=str(OTHER_ASSET_ID))).status == 403
    assert (await demo.get(f"{V3}/sensors", asset_id="99999")).status == 422
    one = await demo.get(f"{V3}/sensors/{SOLAR_POWER}")
    assert one.body["status"] == 200
    assert json.loads(one.body["attributes"]) == {"consumption_is_positive": False}
    assert (await demo.get(f"{V3}/sensors/99999")).body["message"] == {
        "path": {"id": ["No sensor found with ID 99999."]}
    }
    assert (await demo.get(f"{V3}/sensors/abc")).body["message"] == {
        "path": {"id": ["Not a valid integer."]}
    }
    assert (await demo.get(f"{V3}/sensors/{OTHER_POWER}")).status == 403


# --------------------------------------------------------------------------- reading


async def test_native_values_follow_truth_with_gaps_and_future_nulls(
    demo: Api, sim: Simulator
) -> None:
    """Native reads equal ground truth; no data after now; both signs on grid power."""
    start = local("2026-03-28T00:00")
    reply = await demo.data(GRID_POWER, start.isoformat(), "P3D", "kW")
    assert reply.body["duration"] == "PT72H" and reply.body["resolution"] == "PT15M"
    end = start.astimezone(UTC) + timedelta(days=3)  # P3D is 72 fixed hours
    truth = sim.flexmeasures.truth_values(GRID_POWER, start, end)
    assert reply.body["values"] == list(truth.values())
    measured = [v for v in reply.body["values"] if v is not None]
    assert min(measured) < 0 < max(measured)
    last_full = (NOW - start) // timedelta(minutes=15)  # events ended by now
    assert reply.body["values"][last_full - 1] is not None
    assert set(reply.body["values"][last_full:]) == {None}
    days = [local("2026-03-01T00:00") + timedelta(days=n) for n in range(28)]
    gappy = next(d for d in days if gap_hour(GRID_POWER, d.date()) is not None)
    hour = gap_hour(GRID_POWER, gappy.date())
    assert hour is not None
    day = await demo.data(
        GRID_POWER, gappy.isoformat(), "PT24H", "kW", resolution="PT1H"
    )
    assert day.body["values"][hour] is None
    assert sum(v is None for v in day.body["values"]) == 1


async def test_resampling_means_and_unit_conversions(demo: Api, sim: Simulator) -> None:
    """Coarser = mean (energy too), finer = repeat, kWh from power, price units, 422s."""
    start = local("2026-03-27T00:00")
    native = (await demo.data(GRID_POWER, start.isoformat(), "PT1H", "kW")).body[
        "values"
    ]
    hourly = await demo.data(
        GRID_POWER, start.isoformat(), "PT1H", "kW", resolution="PT1H"
    )
    assert hourly.body["values"] == [pytest.approx(sum(native) / 4)]
    as_kwh = await demo.data(GRID_POWER, start.isoformat(), "PT1H", "kWh")
    assert as_kwh.body["values"] == [pytest.approx(v / 4) for v in native]
    half = await demo.data(
        GRID_POWER, start.isoformat(), "PT1H", "kWh", resolution="PT30M"
    )
    assert half.body["values"] == [
        pytest.approx((native[0] + native[1]) / 2 * 0.5),
        pytest.approx((native[2] + native[3]) / 2 * 0.5),
    ]
    watts = await demo.data(GRID_POWER, start.isoformat(), "PT15M", "W")
    assert watts.body["values"] == [pytest.approx(native[0] * 1000)]
    fine = await demo.data(
        GRID_POWER, start.isoformat(), "PT30M", "kW", resolution="PT5M"
    )
    assert fine.body["values"] == [native[0]] * 3 + [native[1]] * 3
    energy = await demo.data(
        ENERGY_METER, start.isoformat(), "PT3H", "kWh", resolution="PT3H"
    )
    hours = (await demo.data(ENERGY_METER, start.isoformat(), "PT3H", "kWh")).body[
        "values"
    ]
    assert energy.body["values"] == [pytest.approx(sum(hours) / 3)]
    quarters = await demo.data(
        ENERGY_METER, start.isoformat(), "PT1H", "kWh", resolution="PT15M"
    )
    assert quarters.body["values"] == [hours[0]] * 4
    refused = await demo.data(ENERGY_METER, start.isoformat(), "PT1H", "kW")
    assert refused.status == 422
    assert refused.body["message"]["combined_sensor_data_description"] == {
        "_schema": ["Required unit for this sensor is kWh, got incompatible unit: kW"]
    }
    price = await demo.data(PRICE, start.isoformat(), "PT2H", "EUR/kWh")
    mwh = await demo.data(PRICE, start.isoformat(), "PT2H", "EUR/MWh")
    assert price.body["values"] == [pytest.approx(v / 1000) for v in mwh.body["values"]]
    assert (await demo.data(PRICE, start.isoformat(), "PT2H", "ct/kWh")).status == 422
    tomorrow = local("2026-03-31T23:00")
    assert (await demo.data(PRICE, tomorrow.isoformat(), "PT2H", "EUR/MWh")).body[
        "values"
    ][0] is not None
    assert (await demo.data(PRICE, tomorrow.isoformat(), "PT2H", "EUR/MWh")).body[
        "values"
    ][1] is None
    off_grid = await demo.data(GRID_POWER, "2026-03-27T00:07:00+01:00", "PT30M", "kW")
    assert off_grid.body["values"] == [None, None]
    utc = await demo.data(GRID_POWER, "2026-03-26T23:00:00Z", "PT15M", "kW")
    assert utc.body["start"] == "2026-03-26T23:00:00+00:00"
    assert utc.body["values"] == native[:1]


async def test_read_validation_and_not_found(demo: Api) -> None:
    """Required fields, aware start, unknown fields, JSON body on GET, 404 vs 403."""
    missing = await demo.get(f"{V3}/sensors/{GRID_POWER}/data")
    assert set(missing.body["message"]["combined_sensor_data_description"]) == {
        "start",
        "duration",
        "unit",
    }
    naive = await demo.data(GRID_POWER, "2026-03-27T00:00:00", "PT1H", "kW")
    assert naive.body["message"]["combined_sensor_data_description"] == {
        "start": ["Not a valid aware datetime."]
    }
    unknown = await demo.data(
        GRID_POWER, "2026-03-27T00:00:00+01:00", "PT1H", "kW", foo="bar"
    )
    assert unknown.body["message"]["combined_sensor_data_description"] == {
        "foo": ["Unknown field."]
    }
    bad = await demo.data(GRID_POWER, "2026-03-27T00:00:00+01:00", "15 minutes", "kW")
    assert bad.body["message"]["combined_sensor_data_description"]["duration"] == [
        "Cannot parse 15 minutes as ISO8601 duration: Unable to parse duration string '15 minutes'"
    ]
    body = await demo.call(
        "GET",
        f"{V3}/sensors/{GRID_POWER}/data",
        json_body={
            "start": "2026-03-27T00:00:00+01:00",
            "duration": "PT30M",
            "unit": "kW",
        },
    )
    assert body.status == 200 and len(body.body["values"]) == 2
    plus = await demo.call(
        "GET",
        f"{V3}/sensors/{GRID_POWER}/data?start=2026-03-27T00:00:00+01:00&duration=PT30M&unit=kW",
    )
    assert plus.status == 200
    gone = await demo.data(99999, "2026-03-27T00:00:00+01:00", "PT1H", "kW")
    assert (gone.status, gone.body) == (
        404,
        {"message": "Sensor 99999 not found", "status": 404},
    )
    foreign = await demo.data(OTHER_POWER, "2026-03-27T00:00:00+01:00", "PT1H", "kW")
    assert (foreign.status, foreign.body["status"]) == (403, "INVALID_SENDER")
    month = await demo.data(ENERGY_METER, "2026-02-01T00:00:00+01:00", "P1M", "kWh")
    assert month.body["duration"] == "PT0H" and len(month.body["values"]) == 28 * 24


async def test_dst_days_have_23_and_25_hours(
    demo: Api, sim: Simulator, clock: FakeClock
) -> None:
    """A local day of the energy meter holds 23 hours in spring and 25 in autumn."""
    spring = local("2026-03-29T00:00")
    reply = await demo.data(ENERGY_METER, spring.isoformat(), "PT23H", "kWh")
    truth = sim.flexmeasures.truth_values(
        ENERGY_METER, spring, local("2026-03-30T00:00")
    )
    assert len(truth) == 23
    assert reply.body["values"] == list(truth.values())
    clock.value = datetime(2026, 10, 27, tzinfo=UTC)
    await demo.login()  # the old token outlived its 6 hours
    autumn = sim.flexmeasures.truth_values(
        ENERGY_METER, local("2026-10-25T00:00"), local("2026-10-26T00:00")
    )
    assert len(autumn) == 25
    day = await demo.data(
        ENERGY_METER, local("2026-10-25T00:00").isoformat(), "PT25H", "kWh"
    )
    assert sum(v for v in day.body["values"] if v is not None) == pytest.approx(
        sum(v for v in autumn.values() if v is not None)
    )


# --------------------------------------------------------------------------- writing


async def test_posting_rules(demo: Api, sim: Simulator, clock: FakeClock) -> None:
    """PROCESSED, repeat/average, unit conversion, nulls, floor, then ALREADY_RECEIVED."""
    start = "2026-03-20T00:00:00+01:00"
    first = await demo.send(HA_POWER, [1, 2, 3, 4], start, "PT1H", "kW")
    assert first.body == {
        "message": "Request has been processed.",
        "status": "PROCESSED",
    }
    again = await demo.send(HA_POWER, [1, 2, 3, 4], start, "PT1H", "kW")
    assert again.body == {
        "message": "Some of the data has already been received and successfully processed.",
        "results": "PROCESSED",
        "status": "ALREADY_RECEIVED_AND_SUCCESSFULLY_PROCESSED",
    }
    assert (
        await demo.send(HA_POWER, [2.5], "2026-03-20T01:00:00+01:00", "PT1H", "kW")
    ).status == 200
    assert (
        await demo.send(HA_POWER, [1], "2026-03-20T02:00:00+01:00", "PT15M", "kWh")
    ).status == 200
    assert (
        await demo.send(HA_POWER, [2], "2026-03-20T03:00:00+01:00", "PT1H", "kWh")
    ).status == 200
    assert (
        await demo.send(HA_POWER, [3.3], "2026-03-20T04:07:00+01:00", "PT15M", "kW")
    ).status == 200
    assert (
        await demo.send(
            HA_POWER, [1, None, "3", None], "2026-03-20T05:00:00+01:00", "PT1H", "kW"
        )
    ).status == 200
    assert (
        await demo.send(HA_POWER, [1500], "2026-03-20T06:00:00+01:00", "PT15M", "W")
    ).status == 200
    read = await demo.data(HA_POWER, start, "PT7H", "kW")
    assert read.body["values"] == (
        [1.0, 2.0, 3.0, 4.0, 2.5, 2.5, 2.5, 2.5, 4.0, None, None, None]
        + [8.0] * 4
        + [3.3, None, None, None, 1.0, None, 3.0, None, 1.5, None, None, None]
    )
    assert (
        await demo.send(HA_ENERGY, [1, 2, 3, 4], start, "PT1H", "kWh")
    ).status == 200
    assert (await demo.data(HA_ENERGY, start, "PT1H", "kWh")).body["values"] == [2.5]
    posted = sim.flexmeasures.truth_posted(HA_ENERGY)
    assert posted == {local("2026-03-20T00:00").astimezone(UTC): 2.5}
    assert (await demo.send(PRICE, [0.05], start, "PT1H", "EUR/kWh")).status == 200
    assert (await demo.data(PRICE, start, "PT1H", "EUR/MWh")).body["values"] == [50.0]
    future = await demo.send(HA_POWER, [1], "2026-04-20T00:00:00+02:00", "PT15M", "kW")
    assert future.status == 200
    meter = await demo.send(
        HA_POWER,
        [1],
        "2026-04-20T00:00:00+02:00",
        "PT15M",
        "kW",
        type="PostMeterDataRequest",
    )
    assert meter.body == {
        "message": "{'_schema': ['Meter data must lie in the past.']}",
        "status": 500,
    }


async def test_replacement_rule_and_refusals(demo: Api, clock: FakeClock) -> None:
    """Same second: 403 INVALID_REPLACEMENT; a second later the new belief wins; 422s."""
    start = "2026-03-21T02:00:00+01:00"
    assert (await demo.send(HA_POWER, [1], start, "PT15M", "kW")).status == 200
    replaced = await demo.send(HA_POWER, [2], start, "PT15M", "kW")
    assert replaced.status == 403
    assert replaced.body["results"] == "Rejected"
    assert replaced.body["status"] == "INVALID_REPLACEMENT"
    clock.advance(timedelta(seconds=1))
    assert (await demo.send(HA_POWER, [2], start, "PT15M", "kW")).status == 200
    assert (await demo.data(HA_POWER, start, "PT15M", "kW")).body["values"] == [2.0]
    prior = "2026-03-21T03:00:00+01:00"
    assert (
        await demo.send(HA_POWER, [5], start, "PT15M", "kW", prior=prior)
    ).status == 200
    assert (
        await demo.send(HA_POWER, [6], start, "PT15M", "kW", prior=prior)
    ).status == 403
    old = await demo.data(
        HA_POWER, start, "PT15M", "kW", prior="2026-03-21T02:30:00+01:00"
    )
    assert old.body["values"] == [None]
    seven = await demo.send(HA_POWER, [1] * 7, start, "PT1H", "kW")
    assert seven.body["message"]["combined_sensor_data_description"] == {
        "_schema": [
            "Resolution of 0:08:34.285714 is incompatible with the sensor's required resolution of 0:15:00."
        ]
    }
    unit = await demo.send(ENERGY_METER, [1], start, "PT1H", "kW")
    assert (
        "incompatible unit: kW"
        in unit.body["message"]["combined_sensor_data_description"]["_schema"][0]
    )
    empty = await demo.send(HA_POWER, [], start, "PT15M", "kW")
    assert (empty.status, empty.body) == (500, {"message": "'values'", "status": 500})
    nothing = await demo.post(f"{V3}/sensors/{HA_POWER}/data", {})
    assert set(nothing.body["message"]["combined_sensor_data_description"]) == {
        "start",
        "duration",
        "unit",
    }
    assert (await demo.send(OTHER_POWER, [1], start, "PT15M", "kW")).status == 403
    assert (await demo.send(99999, [1], start, "PT15M", "kW")).status == 404
    too_big = await demo.send(HA_POWER, [1.123456789] * 260_000, start, "PT15M", "kW")
    assert too_big.status == 413
    assert too_big.body == {
        "message": "Request body exceeds the configured limit of 3250585.6 bytes.",
        "result": "Rejected",
        "status": "PAYLOAD_TOO_LARGE",
    }


async def test_ingestion_worker_answers_202_and_a_job(
    demo: Api, sim: Simulator, clock: FakeClock
) -> None:
    """With a worker: 202 + job; the job finishes after polls or the delay; replacements fail."""
    sim.flexmeasures.ingestion_worker = True
    start = "2026-03-22T00:00:00+01:00"
    accepted = await demo.send(HA_POWER, [4], start, "PT15M", "kW")
    assert accepted.status == 202
    job = accepted.body["job"]
    assert accepted.body == {
        "job": job,
        "job-url": f"/api/v3_0/jobs/{job}",
        "message": "Sensor data has been accepted for processing.",
        "status": "ACCEPTED",
    }
    assert (await demo.data(HA_POWER, start, "PT15M", "kW")).body["values"] == [None]
    queued = await demo.get(f"{V3}/jobs/{job}")
    assert (queued.status, queued.body["status"]) == (202, "QUEUED")
    finished = await demo.get(f"{V3}/jobs/{job}")
    assert (finished.status, finished.body["status"], finished.body["result"]) == (
        200,
        "FINISHED",
        "success",
    )
    assert finished.body["ended-at"] == finished.body["ended_at"]
    assert (await demo.data(HA_POWER, start, "PT15M", "kW")).body["values"] == [4.0]
    clashing = (await demo.send(HA_POWER, [5], start, "PT15M", "kW")).body["job"]
    clock.advance(timedelta(seconds=2))
    failed = await demo.get(f"{V3}/jobs/{clashing}")
    assert (failed.status, failed.body["status"]) == (422, "FAILED")
    assert "Traceback" in failed.body["exc_info"]
    unknown = await demo.get(f"{V3}/jobs/00000000-0000-0000-0000-000000000000")
    assert unknown.body == {
        "message": "Job 00000000-0000-0000-0000-000000000000 not found.",
        "status": "ERROR",
    }


# --------------------------------------------------------------------------- schedules


def trigger_body(**flex_model: Any) -> dict[str, Any]:
    """Return a trigger for tomorrow (prices known) on the home battery."""
    return {
        "start": "2026-03-31T00:00:00+02:00",
        "duration": "PT24H",
        "flex-model": {
            "soc-at-start": "5 kWh",
            "soc-min": "1 kWh",
            "soc-max": "10 kWh",
            **flex_model,
        },
        "flex-context": {
            "consumption-price": {"sensor": PRICE},
            "production-price": {"sensor": PRICE},
        },
    }


async def test_a_schedule_may_start_a_quarter_past_the_hour(
    demo: Api, sim: Simulator
) -> None:
    """Hourly prices hold for each quarter of their hour: 00:15 schedules too."""
    trigger = f"{V3}/sensors/{BATTERY_POWER}/schedules/trigger"
    body = {**trigger_body(), "start": "2026-03-31T00:15:00+02:00", "duration": "PT2H"}
    accepted = await demo.post(trigger, body)
    assert accepted.status == 202
    url = f"{V3}/sensors/{BATTERY_POWER}/schedules/{accepted.body['schedule']}"
    await demo.get(url)  # queued
    done = await demo.get(url)
    assert done.status == 200, done.body
    assert len(done.body["values"]) == 8


async def test_schedule_is_computed_valid_and_kept_as_truth(
    demo: Api, sim: Simulator
) -> None:
    """Trigger 202, one 202 QUEUED poll, then a plan within every bound that earns money."""
    trigger = f"{V3}/sensors/{BATTERY_POWER}/schedules/trigger"
    accepted = await demo.post(trigger, trigger_body(**{"power-capacity": "3 kW"}))
    assert accepted.status == 202
    schedule = accepted.body["schedule"]
    assert (
        accepted.body["results-url"]
        == f"/api/v3_0/sensors/{BATTERY_POWER}/schedules/{schedule}"
    )
    assert accepted.body["status"] == "ACCEPTED"
    assert accepted.headers["X-RateLimit-Limit"] == "10"
    assert accepted.headers["X-RateLimit-Remaining"] == "9"
    url = f"{V3}/sensors/{BATTERY_POWER}/schedules/{schedule}"
    queued = await demo.get(url)
    assert queued.status == 202
    assert queued.body == {
        "message": "Scheduling job waiting to be processed.  was used.",
        "status": "QUEUED",
    }
    done = await demo.get(url)
    assert done.status == 200
    assert done.body["status"] == "PROCESSED"
    assert done.body["start"] == "2026-03-30T22:00:00+00:00"
    assert (done.body["duration"], done.body["unit"]) == ("PT24H", "kW")
    plan = sim.flexmeasures.truth_schedule(schedule)
    assert done.body["values"] == list(plan.power_kw)
    assert len(plan.power_kw) == 96
    assert all(1 - 1e-9 <= soc <= 10 + 1e-9 for soc in plan.soc_kwh)
    assert all(abs(p) <= 3 + 1e-9 for p in plan.power_kw)
    for n, power in enumerate(plan.power_kw):
        assert plan.soc_kwh[n + 1] == pytest.approx(plan.soc_kwh[n] + power / 4)
    assert plan.cost_eur < 0  # arbitrage pays
    prices = (
        await demo.data(
            PRICE, "2026-03-31T00:00:00+02:00", "PT24H", "EUR/MWh", resolution="PT15M"
        )
    ).body["values"]
    charging = [prices[n] for n, p in enumerate(plan.power_kw) if p > 0]
    discharging = [prices[n] for n, p in enumerate(plan.power_kw) if p < 0]
    assert max(charging) < max(discharging) and min(charging) < min(discharging)
    in_mw = await demo.get(url, unit="MW", duration="PT1H")
    assert in_mw.body["values"] == [pytest.approx(p / 1000) for p in plan.power_kw[:4]]


async def test_schedule_targets_failures_and_errors(demo: Api) -> None:
    """soc-targets are met; no price fails the job; unknown schedules and bad bodies."""
    trigger = f"{V3}/sensors/{BATTERY_POWER}/schedules/trigger"
    demo.sim.flexmeasures.schedule_polls = 0
    target = {"datetime": "2026-03-31T06:00:00+02:00", "value": 9}
    body = trigger_body(**{"soc-targets": [target], "soc-unit": "kWh"})
    schedule = (await demo.post(trigger, body)).body["schedule"]
    await demo.get(f"{V3}/sensors/{BATTERY_POWER}/schedules/{schedule}")
    plan = demo.sim.flexmeasures.truth_schedule(schedule)
    assert plan.soc_kwh[24] == pytest.approx(9.0, abs=0.32)
    no_price = {**trigger_body(), "flex-context": {}}
    failed_id = (await demo.post(trigger, no_price)).body["schedule"]
    failed = await demo.get(f"{V3}/sensors/{BATTERY_POWER}/schedules/{failed_id}")
    assert (failed.status, failed.body["status"]) == (400, "UNKNOWN_SCHEDULE")
    late = {**trigger_body(), "start": "2026-04-01T00:00:00+02:00"}
    late_id = (await demo.post(trigger, late)).body["schedule"]
    assert (
        await demo.get(f"{V3}/sensors/{BATTERY_POWER}/schedules/{late_id}")
    ).status == 400
    unknown = await demo.get(f"{V3}/sensors/{BATTERY_POWER}/schedules/nonsense")
    assert unknown.body == {
        "message": "The requested UDI event (id = nonsense, type = job) is not known.",
        "result": "Rejected",
        "status": "UNRECOGNIZED_UDI_EVENT",
    }
    no_sensor = await demo.get(f"{V3}/sensors/99999/schedules/{schedule}")
    assert no_sensor.body["message"] == {"id": ["No sensor found with ID 99999."]}
    assert (
        await demo.post(f"{V3}/sensors/{OTHER_POWER}/schedules/trigger", trigger_body())
    ).status == 403
    for bad, message in (
        ({}, {"json": {"start": ["Missing data for required field."]}}),
        ({**trigger_body(), "foo": 1}, {"json": {"foo": ["Unknown field."]}}),
        (trigger_body(bogus=1), {"json": {"bogus": ["Unknown field."]}}),
        (
            trigger_body(**{"soc-at-start": "5 parsecs"}),
            {"json": {"soc-at-start": ["Cannot convert value `5 parsecs` to 'MWh'"]}},
        ),
        (
            {**trigger_body(), "start": "2026-03-31T00:00:00"},
            {"json": {"start": ["Not a valid aware datetime."]}},
        ),
    ):
        reply = await demo.post(trigger, bad)
        assert (reply.status, reply.body["message"]) == (422, message)
    unknown_price = {
        **trigger_body(),
        "flex-context": {"consumption-price": {"sensor": 99999}},
    }
    assert (await demo.post(trigger, unknown_price)).body["message"] == [
        "No sensor found with ID 99999."
    ]


async def test_trigger_limit_counts_accepted_triggers_only(
    demo: Api, sim: Simulator, clock: FakeClock
) -> None:
    """10 accepted triggers per 5 minutes per user; 422s do not count; 429 beyond."""
    trigger = f"{V3}/sensors/{BATTERY_POWER}/schedules/trigger"
    for n in range(10):
        assert (await demo.post(trigger, {})).status == 422
        reply = await demo.post(trigger, trigger_body())
        assert reply.headers["X-RateLimit-Remaining"] == str(9 - n)
    refused = await demo.post(trigger, trigger_body())
    assert refused.status == 429
    assert refused.body == {
        "message": "You hit a rate limit. The limit you hit allows 10 per 5 minute.",
        "result": "Rejected",
        "status": "TOO_MANY_REQUESTS",
    }
    assert (await demo.get(f"{V3}/assets")).status == 200
    clock.advance(timedelta(minutes=5))
    assert (await demo.post(trigger, trigger_body())).status == 202


# --------------------------------------------------------------------------- rate limit


async def test_rate_limit_500_per_minute_fixed_window(
    demo: Api, sim: Simulator, clock: FakeClock
) -> None:
    """The 501st request in a window gets 429; health is exempt; others are unaffected."""
    first = await demo.get(f"{V3}/sensors/{GRID_POWER}")  # the login counted per client
    assert first.headers["X-RateLimit-Remaining"] == "499"
    assert first.headers["Retry-After"] == "60"
    for _ in range(499):
        await demo.get(f"{V3}/health/ready")
        reply = await demo.get(f"{V3}/sensors/{GRID_POWER}")
    assert reply.status == 200
    refused = await demo.get(f"{V3}/sensors/{GRID_POWER}")
    assert refused.status == 429
    assert refused.body == {
        "message": "You hit a rate limit. The limit you hit allows 500 per 1 minute.",
        "result": "Rejected",
        "status": "TOO_MANY_REQUESTS",
    }
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert (await demo.get(f"{V3}/health/ready")).status == 200
    other = Api(demo.session, sim)
    await other.login(OTHER_EMAIL, OTHER_PASSWORD)
    assert (await other.get(f"{V3}/assets")).status == 200
    clock.advance(timedelta(seconds=30))
    retry = await demo.get(f"{V3}/sensors/{GRID_POWER}")
    assert (retry.status, retry.headers["Retry-After"]) == (429, "30")
    sim.flexmeasures.enforce_rate_limits = False
    assert (await demo.get(f"{V3}/sensors/{GRID_POWER}")).status == 200
    sim.flexmeasures.enforce_rate_limits = True
    clock.advance(timedelta(seconds=30))
    assert (await demo.get(f"{V3}/sensors/{GRID_POWER}")).headers[
        "X-RateLimit-Remaining"
    ] == "499"


async def test_requests_without_a_user_count_per_client(
    api: Api, sim: Simulator
) -> None:
    """Bad tokens and token requests count against the client address, not the user."""
    for n in range(3):
        reply = await api.call("GET", f"{V3}/assets", headers={"Authorization": "nope"})
        assert reply.headers["X-RateLimit-Remaining"] == str(499 - n)
    await api.login()
    mine = await api.get(f"{V3}/assets")
    assert mine.headers["X-RateLimit-Remaining"] == "499"


# --------------------------------------------------------------------------- versions


async def test_sunset_versions_answer_410_with_headers(api: Api) -> None:
    """v1, v1_1, v2_0 endpoints: 410 and the sunset headers; wrong method 405 HTML."""
    reply = await api.get("/api/v1_1/getMeterData")
    assert reply.status == 410
    assert reply.body == {
        "message": (
            "API version 1.1 has been sunset. Please upgrade to API version 3.0. See "
            "https://flexmeasures.readthedocs.io/en/v0.13.0/api/v1_1.html for more information."
        ),
        "status": 410,
    }
    assert reply.headers["Deprecation"] == "Tue, 13 Dec 2022 23:59:59 GMT"
    assert reply.headers["Sunset"] == "Sun, 30 Apr 2023 23:59:59 GMT"
    assert len(reply.headers.getall("Link")) == 2
    assert "Retry-After" in reply.headers
    posted = await api.post("/api/v1_1/postMeterData", {"type": "PostMeterDataRequest"})
    assert posted.status == 410
    assert (
        "2.0 has been sunset"
        in (await api.get("/api/v2_0/getMeterData")).body["message"]
    )
    assert (await api.get("/api/v1_1/postMeterData")).status == 405
    assert (await api.get("/api/v1_1")).status == 404


async def test_old_v1_1_server(api: Api, sim: Simulator) -> None:
    """api_versions=("v1_1",): v1.1 served in MW consumption-positive, v3_0 gone."""
    sim.flexmeasures.api_versions = ("v1_1",)
    assert (await api.get("/api/")).body["versions"] == ["v1_1"]
    await api.login()
    assert (await api.get(f"{V3}/assets")).status == 404
    connections = await api.get("/api/v1_1/getConnection")
    assert connections.body["type"] == "GetConnectionResponse"
    addresses = dict(
        zip(connections.body["names"], connections.body["connections"], strict=True)
    )
    solar = addresses["solar power"]
    assert solar == f"ea1.2027-01.localhost:1:{SOLAR_POWER}"
    assert "energy meter" not in addresses
    start = "2026-03-27T12:00:00+01:00"
    query = {
        "type": "GetMeterDataRequest",
        "connection": solar,
        "start": start,
        "duration": "PT30M",
        "unit": "MW",
    }
    reply = await api.get("/api/v1_1/getMeterData", **query)
    truth = sim.flexmeasures.truth_values(
        SOLAR_POWER, local("2026-03-27T12:00"), local("2026-03-27T12:30")
    )
    assert reply.body["values"] == [
        pytest.approx(-v / 1000) for v in truth.values() if v is not None
    ]
    assert reply.body["values"][0] < 0  # production is negative in USEF's convention
    ha = addresses["power from Home Assistant"]
    post = {
        "type": "PostMeterDataRequest",
        "groups": [{"connections": [ha], "values": [0.001, 0.002]}],
        "start": start,
        "duration": "PT30M",
        "unit": "MW",
    }
    stored = await api.post("/api/v1_1/postMeterData", post)
    assert stored.body == {
        "message": "Request has been processed.",
        "status": "PROCESSED",
        "type": "PostMeterDataResponse",
    }
    # The sensor has no consumption_is_positive attribute: it stores consumption negative.
    assert list(sim.flexmeasures.truth_posted(HA_POWER).values()) == [-1.0, -2.0]
    for bad, code in (
        ({**query, "unit": "kW"}, "INVALID_UNIT"),
        ({**query, "type": "Nope"}, "INVALID_MESSAGE_TYPE"),
        ({**query, "connection": "CS 1"}, "INVALID_DOMAIN"),
        (
            {**query, "connection": f"ea1.2027-01.localhost:1:{ENERGY_METER}"},
            "UNRECOGNIZED_CONNECTION_GROUP",
        ),
        ({**query, "start": "2026-03-27T12:00:00"}, "INVALID_TIMEZONE"),
    ):
        answer = await api.get("/api/v1_1/getMeterData", **bad)
        assert (answer.status, answer.body["status"], answer.body["result"]) == (
            400,
            code,
            "Rejected",
        )
    foreign = await api.get(
        "/api/v1_1/getMeterData",
        **{**query, "connection": f"ea1.2027-01.localhost:2:{OTHER_POWER}"},
    )
    assert (foreign.status, foreign.body["status"]) == (403, "INVALID_SENDER")
    sim.flexmeasures.api_versions = ()
    assert (await api.get("/api/")).body["versions"] == []


# --------------------------------------------------------------------------- faults, CLI, determinism


async def test_faults_use_the_shared_knobs(demo: Api, sim: Simulator) -> None:
    """500, malformed JSON, missing fields, 401 and 429 land on the next request."""
    sim.faults.add("http_500", cloud="flexmeasures")
    assert (await demo.get(f"{V3}/assets")).status == 500
    sim.faults.add("malformed_json", cloud="flexmeasures")
    assert isinstance((await demo.get(f"{V3}/assets")).body, str)
    sim.faults.add("missing_fields", cloud="flexmeasures")
    damaged = (await demo.get(f"{V3}/assets")).body
    assert "id" not in damaged[0] and "name" not in damaged[1]
    sim.faults.add("http_401", cloud="flexmeasures")
    assert (await demo.get(f"{V3}/assets")).status == 401
    sim.faults.add("http_429", cloud="flexmeasures")
    limited = await demo.get(f"{V3}/assets")
    assert (limited.status, limited.headers["Retry-After"]) == (429, "60")
    sim.faults.add("http_500", cloud="flexmeasures", path="requestAuthToken")
    assert (
        await demo.post(
            "/api/requestAuthToken", {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
    ).status == 500


def test_cli_prints_the_flexmeasures_credentials() -> None:
    """``python -m tests.simulator`` serves FlexMeasures and prints its demo user."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            lines = [process.stdout.readline() for _ in range(5)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    line = next(line for line in lines if line.startswith("FlexMeasures:"))
    for part in (
        "/flexmeasures ",
        f"e-mail={DEMO_EMAIL}",
        f"password={DEMO_PASSWORD}",
        OTHER_EMAIL,
    ):
        assert part in line


def test_demo_data_is_deterministic_and_physical() -> None:
    """Two simulators agree; solar is never negative; SOC stays within 0-100 %."""
    first, second = Simulator(now=lambda: NOW), Simulator(now=lambda: NOW)
    start, end = local("2026-03-01T00:00"), local("2026-03-08T00:00")
    for sensor in (GRID_POWER, SOLAR_POWER, STATE_OF_CHARGE, PRICE, ENERGY_METER):
        values = first.flexmeasures.truth_values(sensor, start, end)
        assert values == second.flexmeasures.truth_values(sensor, start, end)
    solar = first.flexmeasures.truth_values(SOLAR_POWER, start, end).values()
    assert (
        min(v for v in solar if v is not None) >= 0
        and max(v for v in solar if v is not None) > 0
    )
    soc = first.flexmeasures.truth_values(STATE_OF_CHARGE, start, end).values()
    assert all(0 <= v <= 100 for v in soc if v is not None)
    assert first.flexmeasures.truth_values(HA_POWER, start, end) == dict.fromkeys(
        first.flexmeasures.truth_values(HA_POWER, start, end)
    )
