"""The project's real FlexMeasures server (tests/flexmeasures_real.py) and its seed.

Plain aiohttp, no integration code: these prove the infrastructure the FlexMeasures
tests stand on (ids come from server.json by name, never hard-coded).
"""

import asyncio
from datetime import UTC, datetime, timedelta
import json
import time
from typing import Any

from aiohttp import ClientSession
import pytest

from tests.flexmeasures_real import FlexMeasuresServer, FlexMeasuresUser

pytestmark = pytest.mark.usefixtures("loopback")


async def sign_in(
    session: ClientSession, server: FlexMeasuresServer, user: FlexMeasuresUser
) -> str:
    """Return a fresh token."""
    creds = {"email": user.email, "password": user.password}
    async with session.post(f"{server.url}/api/requestAuthToken", json=creds) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["auth_token"])


async def call(
    session: ClientSession,
    server: FlexMeasuresServer,
    method: str,
    path: str,
    token: str,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Send one API request; return status and JSON body."""
    headers = {"Authorization": token}
    async with session.request(
        method, f"{server.url}{path}", headers=headers, **kwargs
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_token_and_wrong_password(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """The seeded user signs in; a wrong password is a 401 (the server is real)."""
    server = flexmeasures_real
    assert server.version == "1.0.1"
    assert not server.worker
    assert server.token_max_age == 21600
    token = await sign_in(session, server, server.demo)
    status, body = await call(session, server, "GET", "/api/v3_0/assets", token)
    assert status == 200
    assert {asset["name"] for asset in body} == {"Demo house", "Home battery"}
    creds = {"email": server.demo.email, "password": "wrong"}
    async with session.post(f"{server.url}/api/requestAuthToken", json=creds) as resp:
        assert resp.status == 401
        assert (await resp.json())["errors"] == ["User password does not match."]


async def test_assets_and_sensors(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """The house has the battery as child; sensors have their units and attributes."""
    server = flexmeasures_real
    token = await sign_in(session, server, server.demo)
    house, battery = server.assets["Demo house"], server.assets["Home battery"]
    status, body = await call(
        session, server, "GET", f"/api/v3_0/assets/{battery}", token
    )
    assert status == 200
    assert body["parent_asset_id"] == house
    assert body["generic_asset_type"]["name"] == "battery"
    assert body["account_id"] == server.demo.account_id

    expected = {
        ("Demo house", "grid power"): ("kW", "PT15M", True),
        ("Demo house", "energy meter"): ("kWh", "PT1H", None),
        ("Demo house", "day-ahead price"): ("EUR/MWh", "PT1H", None),
        ("Demo house", "indoor temperature"): ("°C", "PT15M", None),
        ("Demo house", "power from Home Assistant"): ("kW", "PT15M", None),
        ("Demo house", "energy from Home Assistant"): ("kWh", "PT1H", None),
        ("Home battery", "battery power"): ("kW", "PT15M", True),
        ("Home battery", "state of charge"): ("%", "PT15M", None),
    }
    for (asset, name), (unit, resolution, positive) in expected.items():
        sensor = server.sensor(asset, name)
        status, body = await call(
            session, server, "GET", f"/api/v3_0/sensors/{sensor}", token
        )
        assert status == 200, body
        assert (body["name"], body["unit"], body["event_resolution"]) == (
            name,
            unit,
            resolution,
        )
        assert body["generic_asset_id"] == server.assets[asset]
        assert json.loads(body["attributes"]).get("consumption_is_positive") is positive

    # Recent data: both signs for grid and battery power; the forwarding targets empty.
    start = server.recent["quarter_hours_start"].isoformat()
    params = {"start": start, "duration": "PT24H", "unit": "kW"}
    for asset, name in (
        ("Demo house", "grid power"),
        ("Home battery", "battery power"),
    ):
        path = f"/api/v3_0/sensors/{server.sensor(asset, name)}/data"
        status, body = await call(session, server, "GET", path, token, params=params)
        assert status == 200, body
        assert len(body["values"]) == 96
        assert min(body["values"]) < 0 < max(body["values"])
    path = f"/api/v3_0/sensors/{server.sensor('Demo house', 'power from Home Assistant')}/data"
    status, body = await call(session, server, "GET", path, token, params=params)
    assert status == 200
    assert set(body["values"]) == {None}


async def test_dst_window(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """Grid power and energy meter hold hourly data across the DST change, one null hour."""
    server = flexmeasures_real
    dst = server.dst
    assert dst.start < dst.change < dst.end
    assert (dst.start.hour, dst.end.hour) == (12, 12)
    assert dst.start.utcoffset() != dst.end.utcoffset()
    assert dst.change <= datetime.now(UTC)
    hours = round((dst.end - dst.start) / timedelta(hours=1))
    assert hours in (47, 49)  # a spring or an autumn change
    null_index = round((dst.null_hour - dst.start) / timedelta(hours=1))
    token = await sign_in(session, server, server.demo)
    window = {"start": dst.start.isoformat(), "duration": f"PT{hours}H"}
    for name, unit in (("grid power", "kWh"), ("energy meter", "kWh")):
        path = f"/api/v3_0/sensors/{server.sensor('Demo house', name)}/data"
        params = {**window, "unit": unit, "resolution": "PT1H"}
        status, body = await call(session, server, "GET", path, token, params=params)
        assert status == 200, body
        values = body["values"]
        assert len(values) == hours
        assert [i for i, value in enumerate(values) if value is None] == [null_index], (
            name
        )
    path = f"/api/v3_0/sensors/{server.sensor('Demo house', 'grid power')}/data"
    params = {**window, "unit": "kW"}
    status, body = await call(session, server, "GET", path, token, params=params)
    assert len(body["values"]) == hours * 4
    measured = [value for value in body["values"] if value is not None]
    assert len(measured) == hours * 4 - 4
    assert min(measured) < 0 < max(measured)


async def test_other_account_and_wrong_unit(
    session: ClientSession, flexmeasures_real: FlexMeasuresServer
) -> None:
    """Another account's sensor is a 403 INVALID_SENDER; a wrong unit on POST a 422."""
    server = flexmeasures_real
    token = await sign_in(session, server, server.demo)
    other = server.sensor("Other battery", "battery power")
    params = {"start": "2025-01-01T00:00:00+01:00", "duration": "PT1H", "unit": "kW"}
    status, body = await call(
        session, server, "GET", f"/api/v3_0/sensors/{other}/data", token, params=params
    )
    assert (status, body["status"]) == (403, "INVALID_SENDER")
    # ... while its own user reads it.
    other_token = await sign_in(session, server, server.other)
    status, body = await call(
        session,
        server,
        "GET",
        f"/api/v3_0/sensors/{other}/data",
        other_token,
        params=params,
    )
    assert status == 200, body

    target = server.sensor("Demo house", "power from Home Assistant")
    post = {"values": [1.0], "start": "2020-01-01T00:00:00+01:00", "duration": "PT15M"}
    status, body = await call(
        session,
        server,
        "POST",
        f"/api/v3_0/sensors/{target}/data",
        token,
        json={**post, "unit": "EUR/MWh"},
    )
    assert (status, body["status"]) == (422, "UNPROCESSABLE_ENTITY")
    assert "Required unit for this sensor is kW" in json.dumps(body)


async def test_worker_server_post_answers_job(
    session: ClientSession, flexmeasures_real_worker: FlexMeasuresServer
) -> None:
    """With the worker, a POST answers 202 + job, and the job stores the values."""
    server = flexmeasures_real_worker
    assert server.worker
    token = await sign_in(session, server, server.demo)
    target = server.sensor("Demo house", "power from Home Assistant")
    # Long ago, so the forwarding tests' recent intervals stay empty.
    body = {
        "values": [1.5, -2.0, None, 0.25],
        "start": "2020-01-01T00:00:00+01:00",
        "duration": "PT1H",
        "unit": "kW",
    }
    status, answer = await call(
        session, server, "POST", f"/api/v3_0/sensors/{target}/data", token, json=body
    )
    assert (status, answer["status"]) == (202, "ACCEPTED"), answer
    job = answer["job"]
    deadline = time.monotonic() + 30
    while True:
        status, answer = await call(
            session, server, "GET", f"/api/v3_0/jobs/{job}", token
        )
        if answer.get("status") == "FINISHED" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (status, answer["status"]) == (200, "FINISHED"), answer
    params = {"start": body["start"], "duration": "PT1H", "unit": "kW"}
    status, answer = await call(
        session, server, "GET", f"/api/v3_0/sensors/{target}/data", token, params=params
    )
    assert answer["values"] == [1.5, -2.0, None, 0.25]


async def test_worker_server_token_expires(
    session: ClientSession, flexmeasures_real_worker: FlexMeasuresServer
) -> None:
    """The worker server's tokens live token_max_age seconds, then answer 401."""
    server = flexmeasures_real_worker
    assert server.token_max_age == 10
    token = await sign_in(session, server, server.demo)
    status, _ = await call(session, server, "GET", "/api/v3_0/assets", token)
    assert status == 200
    await asyncio.sleep(server.token_max_age + 1.5)
    status, body = await call(session, server, "GET", "/api/v3_0/assets", token)
    assert (status, body["status"]) == (401, "UNAUTHORIZED")


async def test_worker_server_schedules(
    session: ClientSession, flexmeasures_real_worker: FlexMeasuresServer
) -> None:
    """A battery schedule against the day-ahead prices is computed (tests/flexmeasures/REAL-SCHEDULING.md)."""
    server = flexmeasures_real_worker
    token = await sign_in(session, server, server.demo)
    battery = server.sensor("Home battery", "battery power")
    now = datetime.now(UTC)
    start = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    start += timedelta(minutes=15)
    trigger = {
        "start": start.isoformat(),
        "duration": "PT2H",
        "flex-model": {
            "soc-at-start": "5 kWh",
            "soc-min": "1 kWh",
            "soc-max": "10 kWh",
            "power-capacity": "3 kW",
        },
        "flex-context": {
            "consumption-price": {
                "sensor": server.sensor("Demo house", "day-ahead price")
            }
        },
    }
    path = f"/api/v3_0/sensors/{battery}/schedules"
    status, answer = await call(
        session, server, "POST", f"{path}/trigger", token, json=trigger
    )
    assert (status, answer["status"]) == (202, "ACCEPTED"), answer
    job = answer["schedule"]
    deadline = time.monotonic() + 60
    while True:
        status, answer = await call(
            session, server, "GET", f"{path}/{job}", token, params={"duration": "PT2H"}
        )
        if status != 202 or time.monotonic() > deadline:
            break
        assert answer["status"] in ("QUEUED", "STARTED")
        await asyncio.sleep(0.3)
    assert (status, answer["status"]) == (200, "PROCESSED"), answer
    assert answer["scheduler_info"]["scheduler"] == "StorageScheduler"
    assert datetime.fromisoformat(answer["start"]) == start
    values = answer["values"]
    assert len(values) == 8
    assert all(-3.0 - 1e-6 <= value <= 3.0 + 1e-6 for value in values)
    # The state of charge stays within 1..10 kWh (15-minute steps, no losses stated).
    soc = 5.0
    for value in values:
        soc += value * 0.25
        assert 1.0 - 1e-3 <= soc <= 10.0 + 1e-3
    assert any(abs(value) > 0.1 for value in values)
