"""Tests of the cloud simulator itself (tests/simulator), Climkit part.

The integration's tests trust the simulator's ground truth, so the simulator
must first be shown to follow the Climkit document: paths, shapes, labels and
offsets across DST, inclusive bounds, limits, faults and the request log.
"""

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
import json
import math
import time
from typing import Any

import aiohttp
import pytest
import pytest_socket

from tests.simulator import Simulator
from tests.simulator.__main__ import parse_args
from tests.simulator.climkit import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    SITE_CENTRALE,
    SITE_FERME,
    SITE_LAC,
)
from tests.simulator.clock import FakeClock

pytestmark = pytest.mark.usefixtures("socket_enabled")

NOW = datetime(2026, 10, 27, 12, 7, 30, tzinfo=UTC)
LAC = SITE_LAC.id
INTRO, APT1, APT2, APT3, PV, BATTERY, COMMONS, HEATING, COLD, HOT = (
    meter.id for meter in SITE_LAC.meters
)
TEMPERATURE = SITE_LAC.sensors[0].id


@dataclass(frozen=True)
class Reply:
    """What the simulator answered."""

    status: int
    body: Any
    text: str
    headers: dict[str, str]


@dataclass
class Api:
    """A tiny Climkit client for the tests: raw requests, no validation."""

    session: aiohttp.ClientSession
    base: str
    token: str | None = None
    replies: list[Reply] = field(default_factory=list)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply:
        """Send one request with the bearer token (if any) and parse the answer."""
        headers = {}
        if (bearer := token or self.token) is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.session.request(
            method, f"{self.base}{path}", json=body, params=params, headers=headers
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            return Reply(response.status, parsed, text, dict(response.headers))

    async def login(
        self, username: str = DEMO_USERNAME, password: str = DEMO_PASSWORD
    ) -> Reply:
        """POST /auth and keep the token."""
        reply = await self.call(
            "POST", "/auth", body={"username": username, "password": password}
        )
        if reply.status == 200 and "access_token" in reply.body:
            self.token = reply.body["access_token"]
        return reply

    async def data(
        self, path: str, t_s: str, t_e: str, sampling: str | None = "15T"
    ) -> Reply:
        """POST a data request for [t_s, t_e]."""
        body = {"t_s": t_s, "t_e": t_e}
        if sampling is not None:
            body["sampling_frequency"] = sampling
        return await self.call("POST", path, body=body)


@pytest.fixture(autouse=True)
def allow_loopback() -> None:
    """Let the tests reach the simulator on the loopback interface only."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)


@pytest.fixture
def clock() -> FakeClock:
    """Time frozen two days after the autumn DST change of 2026."""
    return FakeClock(NOW)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """Run a simulator without rate limiting (the rate test turns it on)."""
    simulator = Simulator(now=clock)
    simulator.climkit.min_interval = 0
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    """Return an unauthenticated client of the simulated Climkit API."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim.url("climkit"))


@pytest.fixture
async def authed(api: Api) -> Api:
    """Return a client logged in as the demo user."""
    assert (await api.login()).status == 200
    return api


def utc(label: str) -> datetime:
    """Convert a Climkit response timestamp to aware UTC."""
    return datetime.fromisoformat(label).astimezone(UTC)


def exact_sum(values: Iterable[float]) -> float:
    """Sum the published decimals exactly, as the ground truth does."""
    return float(sum((Decimal(repr(value)) for value in values), Decimal(0)))


def hourly_from_15t(
    rows: list[dict[str, Any]], key: str = "total"
) -> dict[datetime, float]:
    """Sum 15T rows per UTC hour of their interval start, as the integration must."""
    unique = {utc(row["timestamp"]) - timedelta(minutes=15): row[key] for row in rows}
    hours: dict[datetime, list[float]] = {}
    for start in sorted(unique):
        hours.setdefault(start.replace(minute=0), []).append(unique[start])
    return {hour: exact_sum(values) for hour, values in hours.items()}


# --------------------------------------------------------------------------- auth


async def test_auth_issues_token_valid_15_minutes(api: Api) -> None:
    """A login answers a token and its expiry as {"$date": epoch ms}."""
    reply = await api.login()
    assert reply.status == 200
    assert isinstance(reply.body["access_token"], str)
    assert reply.body["access_token"].count(".") == 2
    expected = int((NOW + timedelta(minutes=15)).timestamp() * 1000)
    assert reply.body["valid_until"] == {"$date": expected}
    assert (await api.call("GET", "/all_installations")).status == 200


async def test_auth_rejects_bad_credentials(api: Api) -> None:
    """Wrong password or user is 401 with a message; a malformed body is 400."""
    for username, password in ((DEMO_USERNAME, "wrong"), ("nobody", DEMO_PASSWORD)):
        reply = await api.login(username, password)
        assert reply.status == 401
        assert "message" in reply.body
    reply = await api.call("POST", "/auth", body={"username": DEMO_USERNAME})
    assert reply.status == 400


async def test_missing_and_unknown_tokens_are_401(api: Api) -> None:
    """Every endpoint but /auth needs a known bearer token."""
    assert (await api.call("GET", "/all_installations")).status == 401
    reply = await api.call("GET", "/all_installations", token="not-a-token")
    assert reply.status == 401
    assert "message" in reply.body


async def test_token_expires(authed: Api, clock: FakeClock) -> None:
    """A token stops working after the token lifetime; a new login works."""
    clock.advance(timedelta(minutes=14, seconds=59))
    assert (await authed.call("GET", "/all_installations")).status == 200
    clock.advance(timedelta(seconds=1))
    assert (await authed.call("GET", "/all_installations")).status == 401
    assert (await authed.login()).status == 200
    assert (await authed.call("GET", "/all_installations")).status == 200


async def test_revoke_rejects_password_and_tokens(sim: Simulator, authed: Api) -> None:
    """Revoking a user kills its issued tokens and its password."""
    sim.climkit.revoke(DEMO_USERNAME)
    assert (await authed.call("GET", "/all_installations")).status == 401
    assert (await authed.login()).status == 401


# --------------------------------------------------------------------------- sites and meters


async def test_all_installations_shapes_and_access(sim: Simulator, api: Api) -> None:
    """Objects by default, plain id strings on demand; only the user's sites."""
    await api.login()
    reply = await api.call("GET", "/all_installations")
    assert [site["id"] for site in reply.body] == [LAC, SITE_CENTRALE.id, SITE_FERME.id]
    assert reply.body[0] == {
        "id": LAC,
        "name": "Résidence du Lac",
        "site_ref": "LAC-1007-01",
    }

    sim.climkit.all_installations_shape = "strings"
    reply = await api.call("GET", "/all_installations")
    assert reply.body == [LAC, SITE_CENTRALE.id, SITE_FERME.id]

    sim.climkit.add_user("one", "pw-one", [SITE_FERME.id])
    sim.climkit.add_user("none", "pw-none", [])
    await api.login("one", "pw-one")
    assert (await api.call("GET", "/all_installations")).body == [SITE_FERME.id]
    assert (await api.call("GET", f"/installation_infos/{LAC}")).status == 404
    assert (await api.call("GET", f"/meter_info/{LAC}")).status == 404
    await api.login("none", "pw-none")
    assert (await api.call("GET", "/all_installations")).body == []


async def test_installation_infos_and_address_quirk(authed: Api) -> None:
    """Site 1 follows the document; site 2 uses city_name/city_ref."""
    reply = await authed.call("GET", f"/installation_infos/{LAC}")
    assert reply.body == {
        "site_ref": "LAC-1007-01",
        "name": "Résidence du Lac",
        "address": {
            "street_name": "Avenue de Rhodanie",
            "street_number": "58",
            "city": "Lausanne",
            "postal_code": 1007,
        },
        "creation_date": "2024-11-15T09:30:00",
        "latitude": 46.5069,
        "longitude": 6.6233,
        "timezone": "Europe/Zurich",
    }
    reply = await authed.call("GET", f"/installation_infos/{SITE_CENTRALE.id}")
    address = reply.body["address"]
    assert "city" not in address
    assert address["city_name"] == "Zürich"
    assert address["city_ref"] == "261"
    assert isinstance(address["postal_code"], int)
    assert (await authed.call("GET", "/installation_infos/deadbeef")).status == 404


async def test_meter_info_and_quirks(authed: Api) -> None:
    """Site 1: integer prim_ad and is_rule_meter; site 2: strings and ``virtual``."""
    meters = (await authed.call("GET", f"/meter_info/{LAC}")).body
    assert meters[0] == {
        "id": INTRO,
        "type": "electricity",
        "name": "Introduction",
        "mode": "introduction",
        "prim_ad": 10,
        "is_rule_meter": False,
    }
    assert {m["mode"] for m in meters} == {
        "introduction",
        "consumption",
        "production",
        "battery",
    }
    assert {m["type"] for m in meters} == {
        "electricity",
        "heating",
        "cold_water",
        "hot_water",
    }
    assert [m["name"] for m in meters if m["is_rule_meter"]] == ["Communs"]

    meters = (await authed.call("GET", f"/meter_info/{SITE_CENTRALE.id}")).body
    assert all(isinstance(m["prim_ad"], str) for m in meters)
    assert all("is_rule_meter" not in m for m in meters)
    assert [m["virtual"] for m in meters].count(True) == 1
    assert {m["prim_ad"] for m in meters} >= {"10", "11", "101"}


# --------------------------------------------------------------------------- time series


async def test_15t_end_labels_across_autumn_dst(authed: Api) -> None:
    """15T rows are labelled by interval end, local time, offset of that instant."""
    reply = await authed.data(
        f"/meter_data/{LAC}/{APT2}", "2026-10-24T23:45:00", "2026-10-25T01:15:00"
    )
    labels = [row["timestamp"] for row in reply.body]
    assert labels == [
        "2026-10-25 01:45:00+02:00",
        "2026-10-25 02:00:00+02:00",
        "2026-10-25 02:15:00+02:00",
        "2026-10-25 02:30:00+02:00",
        "2026-10-25 02:45:00+02:00",
        "2026-10-25 02:00:00+01:00",
        "2026-10-25 02:15:00+01:00",
    ]
    ends = [utc(label) for label in labels]
    assert ends[0] == datetime(2026, 10, 24, 23, 45, tzinfo=UTC)  # t_s included
    assert ends[-1] == datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # t_e included
    assert all(
        b - a == timedelta(minutes=15) for a, b in zip(ends, ends[1:], strict=False)
    )
    for row in reply.body:
        assert row["total"] == round(row["self"] + row["ext"], 3)


async def test_hourly_start_labels_across_spring_dst(authed: Api) -> None:
    """H rows are labelled by local hour start; 02:00 local does not exist on 29 March."""
    path = f"/meter_data/{LAC}/{APT2}"
    hourly = await authed.data(path, "2026-03-28T23:00:00", "2026-03-29T03:00:00", "H")
    assert [row["timestamp"] for row in hourly.body] == [
        "2026-03-29 00:00:00+01:00",
        "2026-03-29 01:00:00+01:00",
        "2026-03-29 03:00:00+02:00",
        "2026-03-29 04:00:00+02:00",
        "2026-03-29 05:00:00+02:00",
    ]
    quarter = await authed.data(path, "2026-03-28T23:00:00", "2026-03-29T04:00:00")
    sums = hourly_from_15t(quarter.body)
    for row in hourly.body:
        assert row["total"] == round(sums[utc(row["timestamp"])], 3)


async def test_hourly_labels_across_autumn_dst(authed: Api) -> None:
    """The repeated local hour appears twice, with its two offsets."""
    reply = await authed.data(
        f"/site_data/{LAC}/electricity",
        "2026-10-24T23:00:00",
        "2026-10-25T02:00:00",
        "H",
    )
    assert [row["timestamp"] for row in reply.body] == [
        "2026-10-25 01:00:00+02:00",
        "2026-10-25 02:00:00+02:00",
        "2026-10-25 02:00:00+01:00",
        "2026-10-25 03:00:00+01:00",
    ]


async def test_daily_rows_cover_25_hour_day(sim: Simulator, authed: Api) -> None:
    """A D row starts at local midnight and sums every interval of the local day."""
    reply = await authed.data(
        f"/meter_data/{LAC}/{APT3}", "2026-10-24T22:00:00", "2026-10-24T22:00:00", "D"
    )
    assert [row["timestamp"] for row in reply.body] == ["2026-10-25 00:00:00+02:00"]
    truth = sim.climkit.truth_meter_intervals(
        LAC,
        APT3,
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        datetime(2026, 10, 25, 23, tzinfo=UTC),
    )
    assert len(truth) == 100
    assert reply.body[0]["total"] == round(math.fsum(v["total"] for _, v in truth), 3)


async def test_15t_sums_equal_truth_hourly(sim: Simulator, authed: Api) -> None:
    """Summing 15T rows by interval start per UTC hour gives the ground truth exactly.

    The window covers a gap day of Appartement 1 (every 7th day, 02-05 UTC)
    and PV nights: absent hours are absent, dark hours are present with 0.
    """
    start, end = (
        datetime(2026, 10, 24, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 0, tzinfo=UTC),
    )
    rows: list[dict[str, Any]] = []
    for t_s, t_e in (
        ("2026-10-24T00:00:00", "2026-10-25T00:00:00"),
        ("2026-10-25T00:00:00", "2026-10-26T00:15:00"),
    ):
        rows += (await authed.data(f"/meter_data/{LAC}/{APT1}", t_s, t_e)).body
    got = {h: v for h, v in hourly_from_15t(rows).items() if start <= h < end}
    truth = sim.climkit.truth_meter_hourly(LAC, APT1, start, end)
    assert got == truth
    gap_day = datetime(
        2026, 10, 24, tzinfo=UTC
    )  # day 661 since 2025-01-01: 661 % 7 == 3
    assert gap_day + timedelta(hours=2) not in truth
    assert gap_day + timedelta(hours=4) not in truth
    assert gap_day + timedelta(hours=5) in truth
    assert len(truth) == 48 - 3

    pv = sim.climkit.truth_meter_hourly(LAC, PV, start, end)
    assert len(pv) == 48
    assert pv[datetime(2026, 10, 24, 1, tzinfo=UTC)] == 0.0
    assert pv[datetime(2026, 10, 24, 11, tzinfo=UTC)] > 0


async def test_inclusive_bounds_repeat_the_shared_row(authed: Api) -> None:
    """Two adjacent periods both return the row labelled at their common bound."""
    path = f"/meter_data/{LAC}/{PV}"
    first = await authed.data(path, "2026-10-26T10:00:00", "2026-10-26T11:00:00")
    second = await authed.data(path, "2026-10-26T11:00:00", "2026-10-26T12:00:00")
    assert len(first.body) == len(second.body) == 5
    assert first.body[-1] == second.body[0]
    assert set(first.body[0]) == {"total", "timestamp"}


async def test_site_data_is_consistent_with_meters(authed: Api) -> None:
    """Site aggregates follow the meters; other types and empty types behave."""
    t_s, t_e = "2026-10-26T10:00:00", "2026-10-26T10:30:00"
    site = (await authed.data(f"/site_data/{LAC}/electricity", t_s, t_e)).body
    meters = {}
    for meter in (INTRO, APT1, APT2, APT3, PV, BATTERY, COMMONS):
        meters[meter] = (await authed.data(f"/meter_data/{LAC}/{meter}", t_s, t_e)).body
    assert len(site) == 3
    for i, row in enumerate(site):
        conso = sum(meters[m][i]["total"] for m in (APT1, APT2, APT3, COMMONS))
        assert row["conso_total"] == round(conso, 3)
        assert row["prod_total"] == meters[PV][i]["total"]
        assert row["self"] == min(row["conso_total"], row["prod_total"])
        assert row["from_ext"] == round(row["conso_total"] - row["self"], 3)
        assert row["to_ext"] == round(row["prod_total"] - row["self"], 3)
        assert row["from_ext"] == meters[INTRO][i]["total"]
        assert row["storage_charging_total"] == meters[BATTERY][i]["total"]
        assert "storage_discharging_total" in row

    heating = (await authed.data(f"/site_data/{LAC}/heating", t_s, t_e)).body
    assert set(heating[0]) == {"conso_total", "timestamp"}
    water = (await authed.data(f"/meter_data/{LAC}/{COLD}", t_s, t_e)).body
    assert all(0 <= row["total"] < 0.1 for row in water)
    assert (await authed.data(f"/site_data/{LAC}/cooling", t_s, t_e)).body == []
    assert (
        await authed.data(f"/site_data/{SITE_FERME.id}/heating", t_s, t_e)
    ).body == []
    assert (await authed.data(f"/site_data/{LAC}/gas", t_s, t_e)).status == 400
    centrale = (
        await authed.data(f"/site_data/{SITE_CENTRALE.id}/electricity", t_s, t_e)
    ).body
    assert f"total_{SITE_CENTRALE.meters[1].id}" in centrale[0]


async def test_sampling_and_default_period(authed: Api) -> None:
    """M/Y are refused; no body means the last day at 15T."""
    path = f"/meter_data/{LAC}/{APT2}"
    assert (
        await authed.data(path, "2026-10-01T00:00:00", "2026-10-02T00:00:00", "M")
    ).status == 400
    assert (
        await authed.data(path, "2026-10-01T00:00:00", "2026-10-02T00:00:00", "X")
    ).status == 400
    assert (
        await authed.data(path, "2026-10-01 00:00:00.000", "2026-10-01T01:00:00")
    ).status == 200
    assert (await authed.data(path, "yesterday", "2026-10-01T01:00:00")).status == 400
    reply = await authed.call("POST", path)
    assert reply.status == 200
    assert len(reply.body) == 96
    assert utc(reply.body[-1]["timestamp"]) == datetime(2026, 10, 27, 12, 0, tzinfo=UTC)


async def test_max_span(sim: Simulator, authed: Api) -> None:
    """With max_span set, longer or open-ended data requests answer 400."""
    sim.climkit.max_span = timedelta(days=7)
    path = f"/meter_data/{LAC}/{APT2}"
    assert (
        await authed.data(path, "2026-10-01T00:00:00", "2026-10-08T00:00:00", "H")
    ).status == 200
    reply = await authed.data(path, "2026-10-01T00:00:00", "2026-10-08T00:15:00", "H")
    assert reply.status == 400
    assert reply.body == {"message": "requested period too long"}
    assert (
        await authed.call("POST", path, body={"t_e": "2026-10-08T00:00:00"})
    ).status == 400


async def test_raw_registers(sim: Simulator, authed: Api) -> None:
    """Raw rows carry monotonic registers growing by the meter's own values."""
    t_s, t_e = "2026-10-26T09:00:00", "2026-10-26T12:00:00"
    raw = (await authed.data(f"/meter_data_raw/{LAC}/{PV}", t_s, t_e, None)).body
    data = (await authed.data(f"/meter_data/{LAC}/{PV}", t_s, t_e)).body
    assert [r["timestamp"] for r in raw] == [r["timestamp"] for r in data]
    assert len({r["en_im"] for r in raw}) == 1
    for prev, row, value in zip(raw, raw[1:], data[1:], strict=False):
        assert row["en_ex"] == round(prev["en_ex"] + value["total"], 3)
    at = datetime(2026, 10, 26, 12, tzinfo=UTC)
    assert sim.climkit.truth_register(LAC, PV, "en_ex", at) == raw[-1]["en_ex"]

    battery = (
        await authed.data(f"/meter_data_raw/{LAC}/{BATTERY}", t_s, t_e, None)
    ).body
    assert set(battery[0]) == {"en_im", "en_ex", "timestamp"}
    heat = (await authed.data(f"/meter_data_raw/{LAC}/{HEATING}", t_s, t_e, None)).body
    assert set(heat[0]) == {"heat_energy_kwh", "timestamp"}
    water = (await authed.data(f"/meter_data_raw/{LAC}/{HOT}", t_s, t_e, None)).body
    assert set(water[0]) == {"vol_m3", "timestamp"}
    assert all(
        a["vol_m3"] <= b["vol_m3"] for a, b in zip(water, water[1:], strict=False)
    )
    intro = (await authed.data(f"/meter_data_raw/{LAC}/{INTRO}", t_s, t_e, None)).body
    assert intro[-1]["en_im"] == sim.climkit.truth_register(LAC, INTRO, "en_im", at)

    reply = await authed.data(f"/meter_data_raw/{LAC}/{COMMONS}", t_s, t_e, None)
    assert reply.status == 400
    assert reply.body == {"message": "raw data is only available for physical meters"}


async def test_sensors(sim: Simulator, authed: Api) -> None:
    """sensors_list shape; latest point or a period; seconds vs milliseconds."""
    sensors = (await authed.call("GET", f"/{LAC}/sensors_list")).body
    assert [(s["type"], s["unit"]) for s in sensors] == [
        ("temperature", "°C"),
        ("humidity", "%"),
        ("co2", "ppm"),
    ]
    assert set(sensors[0]) == {"id", "name", "type", "unit", "model"}
    assert (await authed.call("GET", f"/{SITE_FERME.id}/sensors_list")).body == []

    latest = (await authed.call("GET", f"/{LAC}/sensor_data/{TEMPERATURE}")).body
    at, value = sim.climkit.truth_sensor_latest(LAC, TEMPERATURE, NOW)
    assert latest == [{"timestamp": int(at.timestamp()), "value": value}]

    period = await authed.call(
        "GET",
        f"/{LAC}/sensor_data/{TEMPERATURE}",
        params={"t_s": "2026-10-27T10:00:00", "t_e": "2026-10-27T11:00:00"},
    )
    assert [row["timestamp"] for row in period.body] == [
        int(datetime(2026, 10, 27, 10, 15 * i, tzinfo=UTC).timestamp())
        for i in range(4)
    ] + [int(datetime(2026, 10, 27, 11, tzinfo=UTC).timestamp())]

    zurich = SITE_CENTRALE.sensors[0]
    latest = (
        await authed.call("GET", f"/{SITE_CENTRALE.id}/sensor_data/{zurich.id}")
    ).body
    assert latest[0]["timestamp"] == int(at.timestamp()) * 1000
    assert (await authed.call("GET", f"/{LAC}/sensor_data/{zurich.id}")).status == 404


# --------------------------------------------------------------------------- limits and faults


async def test_rate_limit_answers_429(sim: Simulator, api: Api) -> None:
    """A second request of one account within min_interval gets 429 + Retry-After."""
    sim.climkit.min_interval = 0.3
    assert (await api.login()).status == 200
    reply = await api.call("GET", "/all_installations")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "1"
    assert reply.body == {"message": "Too many requests"}
    await asyncio.sleep(0.35)
    assert (await api.call("GET", "/all_installations")).status == 200
    assert [r.status for r in sim.log_for("climkit")] == [200, 429, 200]
    assert {r.account for r in sim.log_for("climkit")} == {DEMO_USERNAME}


@pytest.mark.parametrize(
    ("kind", "status"),
    [("http_500", 500), ("http_401", 401), ("http_429", 429), ("timeout", 504)],
)
async def test_error_faults(
    sim: Simulator, authed: Api, kind: str, status: int
) -> None:
    """Error faults hit the next matching request once, after authentication."""
    sim.faults.timeout_seconds = 0.05
    sim.faults.add(kind, cloud="climkit", path="/meter_info/")
    assert (await authed.call("GET", "/all_installations")).status == 200
    assert (await authed.call("GET", f"/meter_info/{LAC}", token="bogus")).status == 401
    reply = await authed.call("GET", f"/meter_info/{LAC}")
    assert reply.status == status
    if kind == "http_429":
        assert reply.headers["Retry-After"] == "1"
    assert (await authed.call("GET", f"/meter_info/{LAC}")).status == 200
    assert sim.faults.pending == []
    assert [r.status for r in sim.log_for("climkit")][-3:] == [401, status, 200]


async def test_malformed_json_fault(sim: Simulator, authed: Api) -> None:
    """malformed_json answers 200, JSON content type, unparsable body."""
    sim.faults.add("malformed_json", count=2)
    for _ in range(2):
        reply = await authed.call("GET", "/all_installations")
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.body is None
    assert (await authed.call("GET", "/all_installations")).body is not None


async def test_missing_fields_fault(sim: Simulator, authed: Api) -> None:
    """missing_fields keeps the shape but drops timestamps, values or ids."""
    sim.faults.add("missing_fields", count=2)
    rows = (
        await authed.data(
            f"/meter_data/{LAC}/{APT2}", "2026-10-26T10:00:00", "2026-10-26T10:30:00"
        )
    ).body
    assert len(rows) == 3
    assert "timestamp" not in rows[0]
    assert "total" in rows[0]
    assert set(rows[1]) == {"timestamp"}
    sites = (await authed.call("GET", "/all_installations")).body
    assert "id" not in sites[0]


async def test_faults_spare_auth_unless_named(sim: Simulator, api: Api) -> None:
    """A fault without a path skips /auth; a path naming /auth hits it."""
    sim.faults.add("http_500")
    assert (await api.login()).status == 200
    assert (await api.call("GET", "/all_installations")).status == 500
    sim.faults.add("http_500", path="^/auth$")
    assert (await api.login()).status == 500
    sim.faults.add("missing_fields", path="auth")
    reply = await api.login()
    assert reply.status == 200
    assert "access_token" not in reply.body
    sim.faults.add("http_401", cloud="locus")
    assert (await api.call("GET", "/all_installations")).status == 200
    with pytest.raises(ValueError):
        sim.faults.add("explode")


async def test_timeout_fault_ends_when_simulator_stops(
    sim: Simulator, api: Api
) -> None:
    """A hanging request does not keep the server from stopping."""
    await api.login()
    sim.faults.add("timeout")
    task = asyncio.create_task(api.call("GET", "/all_installations"))
    while sim.faults.pending and not task.done():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await sim.stop()
    assert time.monotonic() - started < 2
    assert (await task).status == 504


# --------------------------------------------------------------------------- late data and corrections


async def test_publish_late_and_release(sim: Simulator, authed: Api) -> None:
    """Withheld intervals vanish from every series until released; truth keeps them."""
    start = datetime(2026, 10, 26, 10, tzinfo=UTC)
    sim.climkit.publish_late(start, start + timedelta(minutes=30), LAC)
    t_s, t_e = "2026-10-26T10:00:00", "2026-10-26T11:00:00"
    ends = ["2026-10-26 11:00:00+01:00", "2026-10-26 12:00:00+01:00"]

    def labels(reply: Reply) -> list[str]:
        return [row["timestamp"] for row in reply.body]

    data = await authed.data(f"/meter_data/{LAC}/{APT2}", t_s, t_e)
    assert labels(data) == [ends[0], "2026-10-26 11:45:00+01:00", ends[1]]
    assert labels(
        await authed.data(f"/site_data/{LAC}/electricity", t_s, t_e)
    ) == labels(data)
    assert labels(
        await authed.data(f"/meter_data_raw/{LAC}/{APT2}", t_s, t_e, None)
    ) == labels(data)
    readings = await authed.call(
        "GET", f"/{LAC}/sensor_data/{TEMPERATURE}", params={"t_s": t_s, "t_e": t_e}
    )
    assert len(readings.body) == 3
    other = await authed.data(
        f"/meter_data/{SITE_FERME.id}/{SITE_FERME.meters[1].id}", t_s, t_e
    )
    assert len(other.body) == 5
    assert (
        len(
            sim.climkit.truth_meter_intervals(
                LAC, APT2, start, start + timedelta(hours=1)
            )
        )
        == 4
    )

    sim.climkit.release_late()
    assert len((await authed.data(f"/meter_data/{LAC}/{APT2}", t_s, t_e)).body) == 5


async def test_publication_delay(sim: Simulator, authed: Api) -> None:
    """Intervals appear once their end is at least the delay in the past."""
    sim.climkit.publication_delay = timedelta(hours=2)
    rows = (
        await authed.data(
            f"/meter_data/{LAC}/{APT2}", "2026-10-27T08:00:00", "2026-10-27T12:00:00"
        )
    ).body
    assert utc(rows[-1]["timestamp"]) == datetime(2026, 10, 27, 10, 0, tzinfo=UTC)


async def test_correct_overrides_value_and_truth(sim: Simulator, authed: Api) -> None:
    """A correction shows up in meter_data, site_data and the ground truth."""
    start = datetime(2026, 10, 26, 10, 15, tzinfo=UTC)
    t_s = t_e = "2026-10-26T10:30:00"
    before = (await authed.data(f"/site_data/{LAC}/electricity", t_s, t_e)).body[0]
    old = (await authed.data(f"/meter_data/{LAC}/{APT2}", t_s, t_e)).body[0]["total"]
    sim.climkit.correct(LAC, APT2, start, 1.234)
    row = (await authed.data(f"/meter_data/{LAC}/{APT2}", t_s, t_e)).body[0]
    assert row["total"] == 1.234
    assert row["total"] == round(row["self"] + row["ext"], 3)
    after = (await authed.data(f"/site_data/{LAC}/electricity", t_s, t_e)).body[0]
    assert after["conso_total"] == round(before["conso_total"] - old + 1.234, 3)
    hour = datetime(2026, 10, 26, 10, tzinfo=UTC)
    truth = sim.climkit.truth_meter_hourly(LAC, APT2, hour, hour + timedelta(hours=1))
    rows = (
        await authed.data(
            f"/meter_data/{LAC}/{APT2}", "2026-10-26T10:15:00", "2026-10-26T11:00:00"
        )
    ).body
    assert truth == {hour: exact_sum(r["total"] for r in rows)}
    assert sim.climkit.corrections == {(LAC, APT2, start): 1.234}
    with pytest.raises(ValueError):
        sim.climkit.correct(LAC, APT2, start + timedelta(minutes=1), 1.0)


# --------------------------------------------------------------------------- log and routing


async def test_request_log(sim: Simulator, api: Api) -> None:
    """Every request is logged with its outcome; passwords are masked."""
    await api.login(DEMO_USERNAME, "wrong")
    await api.login()
    await api.data(
        f"/meter_data/{LAC}/{APT2}", "2026-10-26T10:00:00", "2026-10-26T10:15:00", "H"
    )
    await api.call(
        "GET",
        f"/{LAC}/sensor_data/{TEMPERATURE}",
        params={"t_s": "2026-10-26T10:00:00"},
    )
    await api.call("GET", "/nowhere")
    log = sim.log_for("climkit")
    assert [(r.method, r.path, r.status, r.account) for r in log] == [
        ("POST", "/auth", 401, DEMO_USERNAME),
        ("POST", "/auth", 200, DEMO_USERNAME),
        ("POST", f"/meter_data/{LAC}/{APT2}", 200, DEMO_USERNAME),
        ("GET", f"/{LAC}/sensor_data/{TEMPERATURE}", 200, DEMO_USERNAME),
        ("GET", "/nowhere", 404, None),
    ]
    assert log[0].body == {"username": DEMO_USERNAME, "password": "***"}
    assert log[2].body["sampling_frequency"] == "H"
    assert log[3].query == {"t_s": "2026-10-26T10:00:00"}
    assert all(r.wall == NOW and r.cloud == "climkit" for r in log)
    assert [r.at for r in log] == sorted(r.at for r in log)
    assert DEMO_PASSWORD not in repr(sim.log)
    sim.clear_log()
    assert sim.log == []


async def test_unknown_paths_and_methods_answer_json(sim: Simulator, api: Api) -> None:
    """404 and 405 come back as JSON, inside and outside the cloud prefix."""
    reply = await api.call("GET", "/nowhere/at/all")
    assert reply.status == 404
    assert "message" in reply.body
    assert (await api.call("GET", "/auth")).status == 405
    async with api.session.get(f"{sim.base_url}/elsewhere") as response:
        assert response.status == 404
    assert sim.log[-1].cloud is None


def test_cli_defaults() -> None:
    """The CLI defaults match the documented limits."""
    args = parse_args([])
    assert (args.host, args.port, args.rate, args.token_lifetime) == (
        "127.0.0.1",
        8765,
        1.0,
        900.0,
    )


def test_data_is_deterministic() -> None:
    """Two simulators agree on every value (no clock or random state involved)."""
    first, second = Simulator(now=lambda: NOW), Simulator(now=lambda: NOW)
    start = datetime(2026, 3, 28, tzinfo=UTC)
    end = start + timedelta(days=2)
    truths = [
        s.climkit.truth_meter_hourly(LAC, PV, start, end) for s in (first, second)
    ]
    assert truths[0] == truths[1]
    assert first.climkit.truth_register(
        LAC, APT1, "en_im", end
    ) == second.climkit.truth_register(LAC, APT1, "en_im", end)
    assert first.climkit.truth_register(LAC, COMMONS, "en_im", end) is None
