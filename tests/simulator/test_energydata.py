"""Tests of the cloud simulator itself (tests/simulator), Energydata.dk part.

The integration's tests trust the simulator's ground truth, so the simulator
must first be shown to follow the Energydata.dk API document: streamed,
headerless CSV for latest values and inclusive spans, JSON errors, the batch
import flow through a presigned S3 upload, the knobs (garbage rows, overwrites,
late data), faults and the request log.
"""

import asyncio
from collections.abc import AsyncIterator
import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import io
import json
from pathlib import Path
import re
import signal
import subprocess
import sys
import tracemalloc
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from multidict import CIMultiDict
import pytest
import pytest_socket
from yarl import URL

from tests.simulator import Simulator
from tests.simulator.clock import FakeClock, epoch_ms
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    DEMO_PREFIX,
    DEMO_TOKEN,
    EPOCH,
    GARBAGE_KINDS,
    GAS_METER_ID,
    HEATING_VOLUME_ID,
    MAIN_METER_ID,
    PV_YIELD_ID,
    READ_ONLY_TOKEN,
    ROOM_TEMPERATURE_ID,
    USER_ID,
    USER_NAME,
    EnergydataCloud,
    SimDatastream,
    format_value,
)
from tests.simulator.process import ROOT

pytestmark = pytest.mark.usefixtures("socket_enabled")

NOW = datetime(2026, 3, 10, 12, 7, 30, tzinfo=UTC)
ALL_IDS = (
    MAIN_METER_ID,
    PV_YIELD_ID,
    ROOM_TEMPERATURE_ID,
    HEATING_VOLUME_ID,
    BATTERY_STATE_ID,
    GAS_METER_ID,
)
CSV_HEADERS = {
    "Content-Type": "text/csv; charset=UTF-8",
    "Content-Disposition": "attachment; filename=data.csv",
    "Content-Description": "File Transfer",
}
IMPORT_KEYS = ["user_id", "status", "name", "updated_at", "created_at", "id"]
# A client in another process: on a line from stdin, download a URL in chunks and
# print the byte count.
DOWNLOAD = """
import sys, urllib.request
sys.stdin.readline()
request = urllib.request.Request(
    sys.argv[1],
    headers={"Authorization": "Bearer " + sys.argv[2], "Accept": "application/json"},
)
size = 0
with urllib.request.urlopen(request) as response:
    while chunk := response.read(65536):
        size += len(chunk)
print(size)
"""
LARAVEL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000000Z")


@dataclass(frozen=True)
class Reply:
    """What the simulator answered."""

    status: int
    text: str
    headers: CIMultiDict[str]

    @property
    def body(self) -> Any:
        """The JSON body, or None when the answer is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def lines(self) -> list[str]:
        """The raw CSV lines (the answer ends with a newline)."""
        assert self.text == "" or self.text.endswith("\n")
        return self.text.split("\n")[:-1]

    @property
    def rows(self) -> list[tuple[int, int, str]]:
        """The CSV rows parsed strictly (RFC 4180): (id, epoch ms, raw value)."""
        rows = []
        for record in csv.reader(io.StringIO(self.text, newline="")):
            assert len(record) == 3, record
            rows.append((int(record[0]), int(record[1]), record[2]))
        return rows


@dataclass
class Api:
    """A tiny Energydata client for the tests: raw requests, no validation."""

    session: aiohttp.ClientSession
    base: str
    token: str | None = DEMO_TOKEN

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        token: str | None = None,
        accept: str | None = "application/json",
    ) -> Reply:
        """Send one request with the bearer token (if any) and read the answer."""
        headers = {}
        if (bearer := token or self.token) is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if accept is not None:
            headers["Accept"] = accept
        async with self.session.request(
            method, f"{self.base}{path}", params=params, headers=headers
        ) as response:
            return Reply(
                response.status, await response.text(), CIMultiDict(response.headers)
            )

    async def latest(self, *ids: int, **kwargs: Any) -> Reply:
        """GET latest values."""
        params = {"ids": ",".join(map(str, ids)), "latest": "true"}
        return await self.call("GET", "/datastreams/values", params=params, **kwargs)

    async def span(self, ids: tuple[int, ...], start: str, end: str) -> Reply:
        """GET the values of [start, end]."""
        params = {"ids": ",".join(map(str, ids)), "from": start, "to": end}
        return await self.call("GET", "/datastreams/values", params=params)

    async def create(self, name: str = "batch-import-example", **kwargs: Any) -> Reply:
        """POST /import?importname=…."""
        return await self.call("POST", "/import", params={"importname": name}, **kwargs)

    async def upload(self, import_id: int, content: bytes) -> Reply:
        """Fetch an upload URL and PUT the file there without any Authorization."""
        url = (await self.call("GET", f"/import/{import_id}/upload_url")).body[
            "upload_url"
        ]
        return await put_s3(self.session, url, content)


async def put_s3(
    session: aiohttp.ClientSession,
    url: str,
    content: bytes,
    headers: dict[str, str] | None = None,
) -> Reply:
    """PUT a file to a presigned URL exactly as issued."""
    sent = {"Content-Type": "application/octet-stream", **(headers or {})}
    async with session.put(URL(url, encoded=True), data=content, headers=sent) as r:
        return Reply(r.status, await r.text(), CIMultiDict(r.headers))


@pytest.fixture(autouse=True)
def allow_loopback() -> None:
    """Let the tests reach the simulator on the loopback interface only."""
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)


@pytest.fixture
def clock() -> FakeClock:
    """Time frozen on a March weekday."""
    return FakeClock(NOW)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """Run a simulator whose import steps only complete on ``settle()``."""
    simulator = Simulator(now=clock)
    simulator.energydata.step_delay = 3600
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def cloud(sim: Simulator) -> EnergydataCloud:
    """Return the simulated Energydata cloud."""
    return sim.energydata


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    """Return a client of the simulated Energydata API with the demo token."""
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim.url("energydata"))


def ms(label: str) -> int:
    """Epoch milliseconds of a naive UTC ISO label."""
    return epoch_ms(datetime.fromisoformat(label).replace(tzinfo=UTC))


def expected_lines(cloud: EnergydataCloud, stream_id: int, readings: Any) -> list[str]:
    """Render ground-truth readings as the API's CSV lines."""
    stream = cloud.datastreams[stream_id]
    return [f"{stream_id},{ts},{format_value(stream, value)}" for ts, value in readings]


async def traced_download(url: str, tmp_path: Path) -> tuple[int, int]:
    """Download ``url`` in a child process; return (body size, traced peak here).

    The child is spawned before tracing starts, waits for a line on stdin and
    writes its result to a file (reading a pipe would allocate another 256 KiB
    buffer), so the peak is the server's: the simulator plus asyncio's 256 KiB
    receive buffer.
    """
    result = tmp_path / "size.txt"
    with result.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DOWNLOAD,
            url,
            DEMO_TOKEN,
            stdin=asyncio.subprocess.PIPE,
            stdout=output,
        )
    assert process.stdin is not None
    tracemalloc.start()
    try:
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        process.stdin.close()
        assert await process.wait() == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(result.read_text()), peak


# --------------------------------------------------------------------------- datastreams


def test_demo_datastreams(cloud: EnergydataCloud) -> None:
    """The demo set: the document's ids, names, types, units and topics."""
    described = {
        s.id: (s.name, s.datatype, s.unit, s.topic, s.behaviour)
        for s in cloud.datastreams.values()
    }
    assert described == {
        65603: (
            "Building 101 main meter",
            "double",
            "kWh",
            "dtu-b101/meter/main/energy",
            "register",
        ),
        65607: (
            "Building 101 PV yield",
            "double",
            "Wh",
            "dtu-b101/pv/yield",
            "interval",
        ),
        65863: (
            "Room 12 temperature",
            "double",
            "°C",
            "dtu-b101/room/12/temperature",
            "sample",
        ),
        70001: (
            "District heating volume",
            "double",
            "m³",
            "dtu-b101/heating/volume",
            "register",
        ),
        70002: ("Battery state", "string", "", "dtu-b101/battery/state", "state"),
        70003: ("Gas meter", "integer", "L", "dtu-b101/meter/gas/volume", "register"),
    }
    assert cloud.by_topic("dtu-b101/pv/yield") is cloud.datastreams[PV_YIELD_ID]
    assert cloud.tokens[DEMO_TOKEN].readable is None
    assert cloud.tokens[DEMO_TOKEN].may_import
    assert cloud.tokens[DEMO_TOKEN].mqtt_prefixes == (DEMO_PREFIX,)
    assert cloud.tokens[READ_ONLY_TOKEN].readable == {MAIN_METER_ID, PV_YIELD_ID}
    assert not cloud.tokens[READ_ONLY_TOKEN].may_import


def test_demo_data_behaves(cloud: EnergydataCloud) -> None:
    """Registers rise, readings sit on their period (main meter jittered), PV sleeps."""
    day = datetime(2026, 3, 8, tzinfo=UTC)
    meter = cloud.readings(MAIN_METER_ID, day, day + timedelta(days=1))
    assert len(meter) == 1440
    assert all(b[1] > a[1] for a, b in zip(meter, meter[1:], strict=False))
    assert all(isinstance(v, float) for _, v in meter)
    offsets = {ts % 60_000 for ts, _ in meter}
    assert len(offsets) > 100
    assert max(offsets) < 2500
    for stream_id, count in ((HEATING_VOLUME_ID, 97), (GAS_METER_ID, 25)):
        series = cloud.readings(stream_id, day, day + timedelta(days=1))
        assert len(series) == count
        assert all(b[1] > a[1] for a, b in zip(series, series[1:], strict=False))
    assert all(isinstance(v, int) for _, v in cloud.readings(GAS_METER_ID, day, NOW))
    pv = dict(cloud.readings(PV_YIELD_ID, day, day + timedelta(days=1)))
    assert len(pv) == 289
    assert all(ts % 300_000 == 0 for ts in pv)
    assert pv[ms("2026-03-08T00:00:00")] == 0.0
    assert pv[ms("2026-03-08T22:00:00")] == 0.0
    assert pv[ms("2026-03-08T11:00:00")] > 100
    temperatures = [v for _, v in cloud.readings(ROOM_TEMPERATURE_ID, day, NOW)]
    assert 18 < min(temperatures) < max(temperatures) < 24
    states = {v for _, v in cloud.readings(BATTERY_STATE_ID, day, NOW)}
    assert {"idle", "charging", "discharging", "balancing cells 3,4"} <= states
    early = cloud.readings(
        MAIN_METER_ID, EPOCH - timedelta(days=1), EPOCH + timedelta(minutes=1)
    )
    assert len(early) == 1
    assert early[0][0] >= epoch_ms(EPOCH)
    assert cloud.readings(GAS_METER_ID, NOW, NOW + timedelta(days=1)) == []


def test_data_is_deterministic() -> None:
    """Two simulators agree on every reading (no clock or random state involved)."""
    first, second = Simulator(now=lambda: NOW), Simulator(now=lambda: NOW)
    start = NOW - timedelta(days=2)
    for stream_id in ALL_IDS:
        assert first.energydata.readings(
            stream_id, start, NOW
        ) == second.energydata.readings(stream_id, start, NOW)
        assert first.energydata.latest(stream_id) == second.energydata.latest(stream_id)


# --------------------------------------------------------------------------- latest


async def test_latest_values(api: Api, cloud: EnergydataCloud) -> None:
    """One headerless line per datastream, in the order of ids, streamed as CSV."""
    ids = (GAS_METER_ID, MAIN_METER_ID, PV_YIELD_ID, ROOM_TEMPERATURE_ID)
    reply = await api.latest(*ids, HEATING_VOLUME_ID, BATTERY_STATE_ID)
    assert reply.status == 200
    for key, value in CSV_HEADERS.items():
        assert reply.headers[key] == value
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in reply.headers
    expected = [
        line
        for stream_id in (*ids, HEATING_VOLUME_ID, BATTERY_STATE_ID)
        for line in expected_lines(cloud, stream_id, [cloud.latest(stream_id)])
    ]
    assert reply.lines == expected
    by_id = {row[0]: row for row in reply.rows}
    assert by_id[PV_YIELD_ID][1] == ms("2026-03-10T12:05:00")
    assert (
        ms("2026-03-10T12:07:00") <= by_id[MAIN_METER_ID][1] < ms("2026-03-10T12:07:03")
    )
    assert by_id[GAS_METER_ID][1] == ms("2026-03-10T12:00:00")
    assert re.fullmatch(r"\d+", by_id[GAS_METER_ID][2])
    assert float(by_id[MAIN_METER_ID][2]) == cloud.latest(MAIN_METER_ID)[1]


async def test_latest_skips_streams_without_values(
    api: Api, cloud: EnergydataCloud
) -> None:
    """A datastream without any visible value has no line; duplicates count once."""
    cloud.add_datastream(
        SimDatastream(80001, "Spare input", DEMO_PREFIX, "spare/input", "double", "kWh")
    )
    reply = await api.latest(80001, PV_YIELD_ID, 80001, PV_YIELD_ID)
    assert [row[0] for row in reply.rows] == [PV_YIELD_ID]
    assert cloud.latest(80001) is None
    empty = await api.latest(80001)
    assert (empty.status, empty.text) == (200, "")
    assert empty.headers["Content-Type"] == CSV_HEADERS["Content-Type"]


# --------------------------------------------------------------------------- spans


async def test_span_is_inclusive_and_grouped_in_ids_order(
    api: Api, cloud: EnergydataCloud
) -> None:
    """Both bounds are inclusive; rows come grouped by datastream in the ids order."""
    start, end = "2026-03-09T10:00:00", "2026-03-09T11:00:00"
    reply = await api.span((PV_YIELD_ID, HEATING_VOLUME_ID), start, end)
    assert reply.status == 200
    for key, value in CSV_HEADERS.items():
        assert reply.headers[key] == value
    assert reply.headers["Transfer-Encoding"] == "chunked"
    rows = reply.rows
    assert [r[0] for r in rows] == [PV_YIELD_ID] * 13 + [HEATING_VOLUME_ID] * 5
    assert rows[0][1] == ms(start)
    assert rows[12][1] == ms(end)
    assert rows[13][1] == ms(start)
    assert rows[-1][1] == ms(end)
    assert reply.lines == expected_lines(
        cloud, PV_YIELD_ID, cloud.readings(PV_YIELD_ID, ms(start), ms(end))
    ) + expected_lines(
        cloud, HEATING_VOLUME_ID, cloud.readings(HEATING_VOLUME_ID, ms(start), ms(end))
    )
    swapped = await api.span((HEATING_VOLUME_ID, PV_YIELD_ID), start, end)
    assert [r[0] for r in swapped.rows] == [HEATING_VOLUME_ID] * 5 + [PV_YIELD_ID] * 13
    single = await api.span((GAS_METER_ID,), end, end)
    assert [r[1] for r in single.rows] == [ms(end)]
    jittered = await api.span((MAIN_METER_ID,), start, end)
    times = [r[1] for r in jittered.rows]
    assert len(times) == 60
    assert times == sorted(times)
    assert ms(start) <= times[0] and times[-1] <= ms(end)


async def test_span_formats_values(api: Api, cloud: EnergydataCloud) -> None:
    """Doubles like the document (24, not 24.0), integers, RFC 4180 strings."""
    night = await api.span((PV_YIELD_ID,), "2026-03-09T01:00:00", "2026-03-09T01:10:00")
    assert [line.rsplit(",", 1)[1] for line in night.lines] == ["0", "0", "0"]
    states = await api.span(
        (BATTERY_STATE_ID,), "2026-03-09T02:45:00", "2026-03-09T03:15:00"
    )
    assert states.lines[1] == f'70002,{ms("2026-03-09T03:00:00")},"balancing cells 3,4"'
    assert [r[2] for r in states.rows][1] == "balancing cells 3,4"
    assert "," not in states.lines[0].split(",", 2)[2]
    tricky = 'fault "E42"\nreset, retry'
    cloud.overwrite(BATTERY_STATE_ID, ms("2026-03-09T03:15:00"), tricky)
    cloud.overwrite(MAIN_METER_ID, ms("2026-03-09T03:00:00"), 24.0)
    cloud.overwrite(GAS_METER_ID, ms("2026-03-09T03:00:00"), 1234567)
    reply = await api.span(
        (BATTERY_STATE_ID, MAIN_METER_ID, GAS_METER_ID),
        "2026-03-09T03:15:00",
        "2026-03-09T03:15:00",
    )
    assert reply.text.startswith(
        f'70002,{ms("2026-03-09T03:15:00")},"fault ""E42""\nreset, retry"\n'
    )
    assert reply.rows[0][2] == tricky
    exact = await api.span(
        (MAIN_METER_ID, GAS_METER_ID), "2026-03-09T03:00:00", "2026-03-09T03:00:00"
    )
    assert exact.lines == [
        f"65603,{ms('2026-03-09T03:00:00')},24",
        f"70003,{ms('2026-03-09T03:00:00')},1234567",
    ]


async def test_very_large_span_streams_with_bounded_memory(
    api: Api, cloud: EnergydataCloud, tmp_path: Path
) -> None:
    """A year of minute data arrives in many chunks; the server never holds the body."""
    params = {
        "ids": str(MAIN_METER_ID),
        "from": "2025-01-01T00:00:00",
        "to": "2026-01-01T00:00:00",
    }
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}", "Accept": "application/json"}
    url = f"{api.base}/datastreams/values"
    rows = size = chunks = 0
    head = tail = b""
    async with api.session.get(url, params=params, headers=headers) as response:
        assert response.status == 200
        async for data, end_of_chunk in response.content.iter_chunks():
            rows += data.count(b"\n")
            size += len(data)
            chunks += end_of_chunk
            head = head or data[:200]
            tail = (tail + data)[-200:]
    edge = cloud.readings(
        MAIN_METER_ID, ms("2026-01-01T00:00:00"), ms("2026-01-01T00:00:00")
    )
    assert rows == 525_600 + len(edge)
    assert chunks > 100
    first = cloud.readings(MAIN_METER_ID, EPOCH, EPOCH + timedelta(minutes=1))[0]
    assert head.startswith(expected_lines(cloud, MAIN_METER_ID, [first])[0].encode())
    last = cloud.readings(
        MAIN_METER_ID, ms("2025-12-31T23:59:00"), ms("2026-01-01T00:00:00")
    )[-1]
    assert tail.endswith(
        expected_lines(cloud, MAIN_METER_ID, [last])[0].encode() + b"\n"
    )
    assert size > 15_000_000

    # The memory bound is measured with the client in another process, so that
    # tracemalloc sees the simulator alone, over 90 days (129,600 rows, 4 MB):
    # tracemalloc slows allocation-heavy code about fivefold, and the peak of a
    # streaming server does not grow with the span. An empty span gives the
    # baseline (asyncio alone receives into a 256 KiB buffer).
    empty, baseline = await traced_download(
        f"{url}?ids=65603&from=2024-01-01T00:00:00&to=2024-01-01T00:00:00", tmp_path
    )
    size, peak = await traced_download(
        f"{url}?ids=65603&from=2025-01-01T00:00:00&to=2025-04-01T00:00:00", tmp_path
    )
    assert empty == 0
    assert size > 4_000_000
    assert peak < size / 8
    assert peak - baseline < size / 20


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"latest": "true"},
        {"ids": "", "latest": "true"},
        {"ids": "65603,abc", "latest": "true"},
        {"ids": "65603,,65607", "latest": "true"},
        {"ids": "65603"},
        {
            "ids": "65603",
            "latest": "true",
            "from": "2026-03-09T00:00:00",
            "to": "2026-03-09T01:00:00",
        },
        {"ids": "65603", "from": "2026-03-09T00:00:00"},
        {"ids": "65603", "to": "2026-03-09T00:00:00"},
        {"ids": "65603", "from": "2026-0309T00:00:00", "to": "2026-03-09T01:00:00"},
        {"ids": "65603", "from": "2026-03-09 00:00:00", "to": "2026-03-09T01:00:00"},
        {"ids": "65603", "from": "2026-03-09T00:00", "to": "2026-03-09T01:00:00"},
        {"ids": "65603", "from": "2026-03-09T00:00:00Z", "to": "2026-03-09T01:00:00"},
        {"ids": "65603", "from": "2026-02-30T00:00:00", "to": "2026-03-09T01:00:00"},
        {"ids": "65603", "from": "2026-03-09T01:00:00", "to": "2026-03-09T00:59:59"},
    ],
)
async def test_bad_parameters_are_400_json(api: Api, params: dict[str, str]) -> None:
    """Missing ids, both or neither modes, bad formats and to < from answer 400."""
    reply = await api.call("GET", "/datastreams/values", params=params)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert set(reply.body) == {"message"}
    assert reply.body["message"]


async def test_auth_and_access_errors(api: Api, cloud: EnergydataCloud) -> None:
    """401 without a valid token, 403 for unreadable and 404 for unknown datastreams."""
    api.token = None
    assert (await api.latest(MAIN_METER_ID)).body == {"message": "Unauthenticated."}
    assert (await api.latest(MAIN_METER_ID)).status == 401
    assert (await api.latest(MAIN_METER_ID, token="nope")).status == 401
    cloud.add_token("short-lived", readable=[GAS_METER_ID])
    assert (await api.latest(GAS_METER_ID, token="short-lived")).status == 200
    cloud.revoke("short-lived")
    assert (await api.latest(GAS_METER_ID, token="short-lived")).status == 401
    api.token = DEMO_TOKEN
    async with api.session.get(
        f"{api.base}/datastreams/values",
        params={"ids": "65603", "latest": "true"},
        headers={"Authorization": f"Token {DEMO_TOKEN}", "Accept": "application/json"},
    ) as response:
        assert response.status == 401

    ok = await api.latest(MAIN_METER_ID, PV_YIELD_ID, token=READ_ONLY_TOKEN)
    assert [r[0] for r in ok.rows] == [MAIN_METER_ID, PV_YIELD_ID]
    denied = await api.latest(MAIN_METER_ID, ROOM_TEMPERATURE_ID, token=READ_ONLY_TOKEN)
    assert denied.status == 403
    assert denied.body == {"message": "Access to datastream 65863 is not permitted."}
    unknown = await api.latest(
        MAIN_METER_ID, 99999, ROOM_TEMPERATURE_ID, token=READ_ONLY_TOKEN
    )
    assert unknown.status == 404
    assert unknown.body == {"message": "Datastream 99999 not found."}
    span = await api.span((99999,), "2026-03-09T00:00:00", "2026-03-09T01:00:00")
    assert span.status == 404
    assert span.headers["Content-Type"].startswith("application/json")


async def test_errors_without_json_accept_are_plain_text(api: Api) -> None:
    """Without Accept: application/json the same statuses come as text/plain."""
    reply = await api.latest(ROOM_TEMPERATURE_ID, token=READ_ONLY_TOKEN, accept=None)
    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text == "Access to datastream 65863 is not permitted."
    unauth = await api.latest(MAIN_METER_ID, token="nope", accept="text/html")
    assert (unauth.status, unauth.text) == (401, "Unauthenticated.")
    bad = await api.call("GET", "/datastreams/values", accept="*/*")
    assert bad.status == 400
    assert bad.body is None


async def test_unknown_paths_and_methods_answer_json(sim: Simulator, api: Api) -> None:
    """404 and 405 come back as JSON and are attributed to the cloud."""
    assert (await api.call("GET", "/nowhere")).status == 404
    reply = await api.call("POST", "/datastreams/values")
    assert reply.status == 405
    assert "message" in reply.body
    assert [r.cloud for r in sim.log] == ["energydata", "energydata"]


# --------------------------------------------------------------------------- knobs


async def test_garbage_rows_are_interleaved_once(
    api: Api, cloud: EnergydataCloud
) -> None:
    """garbage(id, n) mixes n unparsable lines into the next answer serving the stream."""
    start, end = "2026-03-09T10:00:00", "2026-03-09T10:09:59"
    clean = await api.span((MAIN_METER_ID, GAS_METER_ID), start, "2026-03-09T10:00:00")
    cloud.garbage(MAIN_METER_ID, 7)
    reply = await api.span((MAIN_METER_ID,), start, end)
    real = expected_lines(
        cloud, MAIN_METER_ID, cloud.readings(MAIN_METER_ID, ms(start), ms(end))
    )
    assert len(real) == 10
    lines = reply.lines
    assert len(lines) == 17
    assert [line for line in lines if line in real] == real
    junk = [line for line in lines if line not in real]
    assert lines[1] == junk[0]
    ts = [int(line.split(",")[1]) for line in real]
    assert junk == [
        "65603,notatime,1.0",
        f"65603,{ts[1]}",
        "",
        ",,",
        f"65603x,{ts[4]},1.0",
        f"65603,{ts[5]},1.0,2.0",
        "65603,notatime,1.0",
    ]
    assert len(GARBAGE_KINDS) == 6
    again = await api.span((MAIN_METER_ID,), start, end)
    assert again.lines == real
    cloud.garbage(GAS_METER_ID, 2)
    latest = await api.latest(GAS_METER_ID)
    assert (
        latest.lines[0]
        == expected_lines(cloud, GAS_METER_ID, [cloud.latest(GAS_METER_ID)])[0]
    )
    assert latest.lines[1:] == [
        "70003,notatime,1.0",
        f"70003,{cloud.latest(GAS_METER_ID)[0]}",
    ]
    assert (
        await api.span((MAIN_METER_ID, GAS_METER_ID), start, "2026-03-09T10:00:00")
    ).text == clean.text


async def test_shuffle_serves_the_same_lines_in_another_order(
    api: Api, cloud: EnergydataCloud
) -> None:
    """shuffle() mixes every values answer (across datastreams); None sorts again."""
    start, end = "2026-03-09T00:00:00", "2026-03-09T06:00:00"
    ids = (MAIN_METER_ID, GAS_METER_ID)
    sorted_lines = (await api.span(ids, start, end)).lines
    cloud.shuffle(7)
    first = (await api.span(ids, start, end)).lines
    second = (await api.span(ids, start, end)).lines
    assert sorted(first) == sorted(second) == sorted(sorted_lines)
    assert len(sorted_lines) > 300
    assert first != sorted_lines
    assert second != first  # a new order each answer
    # Across datastreams: a gas line comes before the last main meter line.
    stream_of = [int(line.split(",")[0]) for line in first]
    assert stream_of.index(GAS_METER_ID) < max(
        i for i, s in enumerate(stream_of) if s == MAIN_METER_ID
    )
    cloud.shuffle(None)
    assert (await api.span(ids, start, end)).lines == sorted_lines


async def test_overwrite_replaces_a_reading(api: Api, cloud: EnergydataCloud) -> None:
    """A duplicate timestamp overwrites; a new timestamp adds a reading."""
    start, end = ms("2026-03-09T10:00:00"), ms("2026-03-09T10:05:00")
    before = cloud.readings(MAIN_METER_ID, start, end)
    ts = before[2][0]
    cloud.overwrite(MAIN_METER_ID, ts, 1.5)
    cloud.overwrite(MAIN_METER_ID, ts + 1, 2.25)
    after = cloud.readings(MAIN_METER_ID, start, end)
    assert len(after) == len(before) + 1
    assert (ts, 1.5) in after
    assert (ts + 1, 2.25) in after
    reply = await api.span(
        (MAIN_METER_ID,), "2026-03-09T10:00:00", "2026-03-09T10:05:00"
    )
    assert reply.lines == expected_lines(cloud, MAIN_METER_ID, after)
    assert f"65603,{ts},1.5" in reply.lines
    future = epoch_ms(NOW) + 60_000
    cloud.overwrite(GAS_METER_ID, future, 99)
    assert cloud.latest(GAS_METER_ID) == (future, 99)
    assert (await api.latest(GAS_METER_ID)).lines == [f"70003,{future},99"]
    with pytest.raises(TypeError):
        cloud.overwrite(GAS_METER_ID, future, 1.5)
    with pytest.raises(TypeError):
        cloud.overwrite(BATTERY_STATE_ID, future, 1)
    with pytest.raises(KeyError):
        cloud.overwrite(12345, future, 1)


async def test_late_data_and_release(api: Api, cloud: EnergydataCloud) -> None:
    """Late windows hide readings from latest and spans until released; truth keeps them."""
    truth_latest = cloud.latest(MAIN_METER_ID)
    cloud.late(MAIN_METER_ID, NOW - timedelta(minutes=10), NOW + timedelta(minutes=1))
    hidden = cloud.latest(MAIN_METER_ID)
    assert hidden[0] < epoch_ms(NOW - timedelta(minutes=10))
    assert hidden[0] >= epoch_ms(NOW - timedelta(minutes=11))
    assert (await api.latest(MAIN_METER_ID)).lines == expected_lines(
        cloud, MAIN_METER_ID, [hidden]
    )
    span = await api.span(
        (MAIN_METER_ID,), "2026-03-10T11:50:00", "2026-03-10T12:10:00"
    )
    truth = cloud.readings(
        MAIN_METER_ID, ms("2026-03-10T11:50:00"), ms("2026-03-10T12:10:00")
    )
    assert len(truth) == 18
    assert len(span.rows) == 8
    assert [r[1] for r in span.rows] == [ts for ts, _ in truth[:8]]
    assert (await api.latest(PV_YIELD_ID)).rows[0][1] == ms("2026-03-10T12:05:00")
    cloud.late(None, EPOCH, NOW + timedelta(days=1))
    assert (await api.latest(PV_YIELD_ID, GAS_METER_ID)).text == ""
    cloud.release_late()
    assert cloud.latest(MAIN_METER_ID) == truth_latest
    assert (
        len(
            (
                await api.span(
                    (MAIN_METER_ID,), "2026-03-10T11:50:00", "2026-03-10T12:10:00"
                )
            ).rows
        )
        == 18
    )


# --------------------------------------------------------------------------- batch import

GOOD_FILE = (
    ";70002;dtu-b101/meter/main/energy;70003\n"
    "2026-03-09T20:24:30.139Z;a_string;23.4121;-10\n"
    '2026-03-09T20:24:31.144Z;"another; string";999888777.121;0\n'
    "2026-03-09T20:24:32.161Z;a third string;-1.33e-16;45\n"
    "\n"
    "2026-03-09T20:24:33.186Z;;54.1;11\n"
    "2026-03-09T20:24:34.201Z;a-fourth-string;;45\n"
    "2026-03-09T20:00:00.000Z;x;1;77\n"
)


async def create_uploaded(api: Api, content: str | bytes, name: str = "batch") -> int:
    """Create an import and upload ``content``; return the import id."""
    created = await api.create(name)
    assert created.status == 201
    data = content.encode() if isinstance(content, str) else content
    assert (await api.upload(created.body["id"], data)).status == 200
    return created.body["id"]


async def show(api: Api, import_id: int) -> dict[str, Any]:
    """GET an import."""
    reply = await api.call("GET", f"/import/{import_id}")
    assert reply.status == 200
    return reply.body


async def test_batch_import_end_to_end(
    sim: Simulator, api: Api, cloud: EnergydataCloud
) -> None:
    """Create, upload to S3 without the token, validate, ingest, read back."""
    generated_gas = cloud.readings(
        GAS_METER_ID, ms("2026-03-09T20:00:00"), ms("2026-03-09T20:00:00")
    )
    assert generated_gas and generated_gas[0][1] != 77

    created = await api.create("batch-import-example")
    assert created.status == 201
    assert list(created.body) == IMPORT_KEYS
    assert created.body["user_id"] == USER_ID
    assert created.body["status"] == "stored"
    assert created.body["name"] == "batch-import-example"
    assert created.body["id"] == 1340
    assert LARAVEL_TIME.fullmatch(created.body["created_at"])
    assert created.body["created_at"] == "2026-03-10T12:07:30.000000Z"
    import_id = created.body["id"]
    assert await show(api, import_id) == created.body | {"errors": []}

    url_reply = await api.call("GET", f"/import/{import_id}/upload_url")
    assert url_reply.status == 200
    upload_url = url_reply.body["upload_url"]
    parts = urlsplit(upload_url)
    assert f"{parts.scheme}://{parts.netloc}" == sim.base_url
    assert re.fullmatch(
        rf"/energydata-s3/import/inbox/{USER_NAME}/[0-9a-f-]{{36}}\.csv", parts.path
    )
    query = parse_qsl(parts.query)
    assert [key for key, _ in query] == [
        "X-Amz-Content-Sha256",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
        "X-Amz-Signature",
    ]
    assert (
        dict(query)["X-Amz-Credential"] == "edk-s3root/20260310/default/s3/aws4_request"
    )
    assert dict(query)["X-Amz-Date"] == "20260310T120730Z"
    assert dict(query)["X-Amz-Expires"] == "7200"
    assert (
        "X-Amz-Credential=edk-s3root%2F20260310%2Fdefault%2Fs3%2Faws4_request"
        in upload_url
    )

    put = await put_s3(api.session, upload_url, GOOD_FILE.encode())
    assert put.status == 200
    assert put.headers["ETag"].startswith('"')

    validating = await api.call("PUT", f"/import/{import_id}/validate")
    assert validating.status == 202
    assert validating.body["status"] == "validating"
    assert (await show(api, import_id))["status"] == "validating"
    early = await api.call("PUT", f"/import/{import_id}/ingest")
    assert early.status == 409
    cloud.settle()
    ready = await show(api, import_id)
    assert (ready["status"], ready["errors"]) == ("ready", [])
    assert ms(ready["updated_at"].replace(".000000Z", "")) == epoch_ms(NOW)

    ingesting = await api.call("PUT", f"/import/{import_id}/ingest")
    assert ingesting.status == 202
    assert ingesting.body["status"] == "ingesting"
    assert cloud.ingested == {}
    cloud.settle()
    assert (await show(api, import_id))["status"] == "done"

    t0 = ms("2026-03-09T20:24:30.139")
    assert cloud.ingested[BATTERY_STATE_ID] == [
        (t0, "a_string"),
        (t0 + 1005, "another; string"),
        (t0 + 2022, "a third string"),
        (t0 + 3047, ""),
        (t0 + 4062, "a-fourth-string"),
        (ms("2026-03-09T20:00:00"), "x"),
    ]
    assert cloud.ingested[MAIN_METER_ID] == [
        (t0, 23.4121),
        (t0 + 1005, 999888777.121),
        (t0 + 2022, -1.33e-16),
        (t0 + 3047, 54.1),
        (ms("2026-03-09T20:00:00"), 1.0),
    ]
    assert cloud.ingested[GAS_METER_ID][-1] == (ms("2026-03-09T20:00:00"), 77)
    span = await api.span(
        (BATTERY_STATE_ID, MAIN_METER_ID, GAS_METER_ID),
        "2026-03-09T20:24:30",
        "2026-03-09T20:24:35",
    )
    assert span.lines == [
        f"70002,{t0},a_string",
        f"70002,{t0 + 1005},another; string",
        f"70002,{t0 + 2022},a third string",
        f"70002,{t0 + 3047},",
        f"70002,{t0 + 4062},a-fourth-string",
        f"65603,{t0},23.4121",
        f"65603,{t0 + 1005},999888777.121",
        f"65603,{t0 + 2022},-1.33e-16",
        f"65603,{t0 + 3047},54.1",
        f"70003,{t0},-10",
        f"70003,{t0 + 1005},0",
        f"70003,{t0 + 2022},45",
        f"70003,{t0 + 3047},11",
        f"70003,{t0 + 4062},45",
    ]
    hour = await api.span((GAS_METER_ID,), "2026-03-09T20:00:00", "2026-03-09T20:00:00")
    assert hour.lines == [f"70003,{ms('2026-03-09T20:00:00')},77"]
    assert cloud.readings(
        GAS_METER_ID, ms("2026-03-09T20:00:00"), ms("2026-03-09T20:00:00")
    ) == [(ms("2026-03-09T20:00:00"), 77)]
    assert (await api.call("PUT", f"/import/{import_id}/ingest")).status == 409
    assert (await api.call("GET", f"/import/{import_id}/upload_url")).status == 409
    deleted = await api.call("DELETE", f"/import/{import_id}")
    assert deleted.status == 204
    assert (await api.call("GET", f"/import/{import_id}")).status == 404
    assert (
        cloud.readings(
            GAS_METER_ID, ms("2026-03-09T20:00:00"), ms("2026-03-09T20:00:00")
        )[0][1]
        == 77
    )


async def test_import_steps_complete_after_step_delay(
    api: Api, cloud: EnergydataCloud
) -> None:
    """Without settle(), a step completes at the first observation step_delay later."""
    cloud.step_delay = 0
    import_id = await create_uploaded(api, "x,65607\n2026-03-09T12:00:00.000Z,5\n")
    assert (await api.call("PUT", f"/import/{import_id}/validate")).body[
        "status"
    ] == "validating"
    assert (await show(api, import_id))["status"] == "ready"
    cloud.step_delay = 0.05
    assert (await api.call("PUT", f"/import/{import_id}/ingest")).body[
        "status"
    ] == "ingesting"
    await asyncio.sleep(0.06)
    assert cloud.latest(PV_YIELD_ID) is not None
    assert cloud.imports[import_id].status == "done"
    assert (ms("2026-03-09T12:00:00"), 5.0) in cloud.readings(
        PV_YIELD_ID, ms("2026-03-09T12:00:00"), ms("2026-03-09T12:00:00")
    )


async def test_invalid_file_lists_errors(api: Api, cloud: EnergydataCloud) -> None:
    """Unknown datastreams, bad timestamps and wrong types make the import invalid."""
    bad_header = await create_uploaded(
        api, ";65603;nope/topic;dtu-b101/pv/yield;65603\n"
    )
    await api.call("PUT", f"/import/{bad_header}/validate")
    cloud.settle()
    body = await show(api, bad_header)
    assert body["status"] == "invalid"
    assert body["errors"] == [
        "Column 3: unknown datastream 'nope/topic'.",
        "Column 5: datastream 65603 appears twice.",
    ]

    bad_rows = await create_uploaded(
        api,
        ";65603;70003;70002\n"
        "2026-03-09 20:24:30.139Z;1.0;1;a\n"
        "2026-03-09T20:24:31Z;1.0;1;a\n"
        "2026-03-09T20:24:32.000Z;abc;1.5;a\n"
        "2026-03-09T20:24:33.000Z;1,5;1;a\n"
        "2026-03-09T20:24:34.000Z;1.0;1\n"
        "2026-03-09T20:24:35.000Z;nan;7;ok\n",
    )
    await api.call("PUT", f"/import/{bad_rows}/validate")
    cloud.settle()
    body = await show(api, bad_rows)
    assert body["status"] == "invalid"
    assert body["errors"] == [
        "Row 2: invalid timestamp '2026-03-09 20:24:30.139Z' (expected YYYY-MM-DDTHH:mm:ss.SSSZ, UTC).",
        "Row 3: invalid timestamp '2026-03-09T20:24:31Z' (expected YYYY-MM-DDTHH:mm:ss.SSSZ, UTC).",
        "Row 4, column 2: 'abc' is not a valid double for datastream 65603.",
        "Row 4, column 3: '1.5' is not a valid integer for datastream 70003.",
        "Row 5, column 2: '1,5' is not a valid double for datastream 65603.",
        "Row 6: expected 4 fields, found 3.",
        "Row 7, column 2: 'nan' is not a valid double for datastream 65603.",
    ]
    assert (await api.call("PUT", f"/import/{bad_rows}/ingest")).status == 409

    # Fix the file: an invalid import takes a new upload and validates again.
    assert (
        await api.upload(bad_rows, b"ts,65603\r\n2026-03-09T20:24:30.139Z,1.0\r\n")
    ).status == 200
    assert (await api.call("PUT", f"/import/{bad_rows}/validate")).status == 202
    cloud.settle()
    assert (await show(api, bad_rows))["status"] == "ready"

    for content, error in (
        (b"", "The file is empty."),
        (b";65603\n", "The file contains no data rows."),
        (b"\xff\xfe;65603\n", "The file is not valid UTF-8."),
    ):
        import_id = await create_uploaded(api, content)
        await api.call("PUT", f"/import/{import_id}/validate")
        cloud.settle()
        assert (await show(api, import_id))["errors"] == [error]
    never = (await api.create()).body["id"]
    await api.call("PUT", f"/import/{never}/validate")
    cloud.settle()
    assert (await show(api, never))["errors"] == [
        "The import file has not been uploaded."
    ]


async def test_import_conflicts_and_permissions(
    api: Api, cloud: EnergydataCloud
) -> None:
    """409 out of order, 403 without import rights, 404 unknown, 400 without a name."""
    import_id = (await api.create()).body["id"]
    assert (await api.call("PUT", f"/import/{import_id}/ingest")).status == 409
    assert (await api.call("GET", "/import/999")).status == 404
    assert (await api.call("GET", "/import/abc")).status == 404
    assert (await api.call("POST", "/import")).status == 400
    for method, path in (
        ("POST", "/import?importname=x"),
        ("GET", f"/import/{import_id}"),
        ("GET", f"/import/{import_id}/upload_url"),
        ("PUT", f"/import/{import_id}/validate"),
        ("PUT", f"/import/{import_id}/ingest"),
        ("DELETE", f"/import/{import_id}"),
    ):
        reply = await api.call(method, path, token=READ_ONLY_TOKEN)
        assert reply.status == 403, path
        assert reply.body == {"message": "This token may not import data."}
        assert (await api.call(method, path, token="nope")).status == 401
    assert (await api.latest(MAIN_METER_ID, token=READ_ONLY_TOKEN)).status == 200

    cloud.add_token("meter-importer", readable=[MAIN_METER_ID], may_import=True)
    api.token = "meter-importer"
    import_id = await create_uploaded(
        api, ";65603;70003\n2026-03-09T20:24:30.139Z;1.0;2\n"
    )
    await api.call("PUT", f"/import/{import_id}/validate")
    cloud.settle()
    assert (await show(api, import_id))["errors"] == [
        "Column 3: datastream 70003 is not accessible with this token."
    ]


async def test_s3_rules(sim: Simulator, api: Api, clock: FakeClock) -> None:
    """No Authorization header at S3 (400); only issued, unexpired signatures (403)."""
    import_id = (await api.create()).body["id"]
    url = (await api.call("GET", f"/import/{import_id}/upload_url")).body["upload_url"]
    leaked = await put_s3(
        api.session, url, b";65603\n", headers={"Authorization": f"Bearer {DEMO_TOKEN}"}
    )
    assert leaked.status == 400
    assert "<Code>InvalidArgument</Code>" in leaked.text
    assert sim.energydata.uploads == {}

    tampered = re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=" + "0" * 64, url)
    assert (await put_s3(api.session, tampered, b"x")).status == 403
    other_key = url.replace(".csv?", "0.csv?")
    reply = await put_s3(api.session, other_key, b"x")
    assert reply.status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in reply.text
    bare = url.split("?", 1)[0]
    assert (await put_s3(api.session, bare, b"x")).status == 403
    async with api.session.get(URL(url, encoded=True)) as response:
        assert response.status == 405

    clock.advance(timedelta(seconds=7201))
    expired = await put_s3(api.session, url, b"x")
    assert expired.status == 403
    assert "Request has expired" in expired.text
    fresh = (await api.call("GET", f"/import/{import_id}/upload_url")).body[
        "upload_url"
    ]
    assert (await put_s3(api.session, fresh, b";65603\n")).status == 200
    assert list(sim.energydata.uploads.values()) == [b";65603\n"]


# --------------------------------------------------------------------------- faults and log


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("http_500", 500, "Server Error"),
        ("http_401", 401, "Unauthenticated."),
        ("http_429", 429, "Too Many Attempts."),
        ("timeout", 504, "Gateway Timeout"),
    ],
)
async def test_error_faults(
    sim: Simulator, api: Api, kind: str, status: int, message: str
) -> None:
    """Error faults hit the next matching request once, after authentication."""
    sim.faults.timeout_seconds = 0.05
    sim.faults.add(kind, cloud="energydata", path="^/datastreams/values$")
    assert (await api.call("GET", "/import/1")).status == 404
    assert (await api.latest(MAIN_METER_ID, token="bogus")).status == 401
    reply = await api.latest(MAIN_METER_ID)
    assert reply.status == status
    assert reply.body == {"message": message}
    if kind == "http_429":
        assert reply.headers["Retry-After"] == "1"
    assert (await api.latest(MAIN_METER_ID)).status == 200
    assert sim.faults.pending == []
    assert [r.status for r in sim.log_for("energydata")][-3:] == [401, status, 200]


async def test_body_faults(sim: Simulator, api: Api) -> None:
    """malformed_json and missing_fields damage the CSV and the JSON answers."""
    sim.faults.add("malformed_json", cloud="energydata")
    broken = await api.latest(MAIN_METER_ID, PV_YIELD_ID)
    assert broken.status == 200
    assert broken.headers["Content-Type"] == CSV_HEADERS["Content-Type"]
    assert broken.text.startswith("<html>")

    sim.faults.add("missing_fields", cloud="energydata")
    damaged = await api.span(
        (PV_YIELD_ID,), "2026-03-09T12:00:00", "2026-03-09T12:10:00"
    )
    cells = [line.split(",") for line in damaged.lines]
    assert [len(c) for c in cells] == [3, 3, 3]
    assert cells[0][1] == "" and cells[0][2] != ""
    assert cells[1][1] != "" and cells[1][2] == ""

    sim.faults.add("missing_fields", cloud="energydata", path="^/import$")
    created = await api.create()
    assert created.status == 201
    assert "id" not in created.body and "status" not in created.body
    sim.faults.add("malformed_json", cloud="energydata", path="^/import")
    reply = await api.call("GET", "/import/1340")
    assert reply.status == 200
    assert reply.body is None

    sim.faults.add("http_500", cloud="climkit")
    assert (await api.latest(MAIN_METER_ID)).status == 200


async def test_s3_faults(sim: Simulator, api: Api) -> None:
    """The S3 inbox takes faults of cloud energydata by its full path."""
    import_id = (await api.create()).body["id"]
    url = (await api.call("GET", f"/import/{import_id}/upload_url")).body["upload_url"]
    sim.faults.add("http_500", cloud="energydata", path="^/energydata-s3/")
    assert (await put_s3(api.session, url, b";65603\n")).status == 500
    assert (await put_s3(api.session, url, b";65603\n")).status == 200
    assert sim.log[-1].cloud == "energydata"


async def test_request_log(sim: Simulator, api: Api, cloud: EnergydataCloud) -> None:
    """Requests are logged with their cloud, account fingerprint and masked secrets."""
    await api.latest(MAIN_METER_ID)
    await api.latest(MAIN_METER_ID, token="nope")
    import_id = (await api.create("log-test")).body["id"]
    url = (await api.call("GET", f"/import/{import_id}/upload_url")).body["upload_url"]
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    await put_s3(api.session, url, b";65603\n2026-03-09T20:24:30.139Z;1\n")
    await put_s3(
        api.session, url, b"x", headers={"Authorization": f"Bearer {DEMO_TOKEN}"}
    )
    log = sim.log_for("energydata")
    account = cloud.account_of(DEMO_TOKEN)
    assert account.startswith("edk-")
    assert DEMO_TOKEN not in account
    s3_path = urlsplit(url).path
    assert [(r.method, r.path, r.status, r.account) for r in log] == [
        ("GET", "/datastreams/values", 200, account),
        ("GET", "/datastreams/values", 401, None),
        ("POST", "/import", 201, account),
        ("GET", f"/import/{import_id}/upload_url", 200, account),
        ("PUT", s3_path, 200, None),
        ("PUT", s3_path, 400, None),
    ]
    assert log[0].query == {"ids": "65603", "latest": "true"}
    assert log[2].query == {"importname": "log-test"}
    assert log[4].query["X-Amz-Signature"] == "***"
    assert log[4].query["X-Amz-Expires"] == "7200"
    assert all(r.wall == NOW for r in log)
    assert DEMO_TOKEN not in repr(sim.log)
    assert signature not in repr(sim.log)
    assert [r.at for r in log] == sorted(r.at for r in log)


def test_cli_prints_the_energydata_endpoint() -> None:
    """The demo backend prints the Energydata API URL, tokens and datastreams."""
    with subprocess.Popen(
        [sys.executable, "-m", "tests.simulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            lines = [process.stdout.readline() for _ in range(3)]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    line = next(line for line in lines if line.startswith("Energydata.dk:"))
    assert "/energydata/api/v1 " in line
    assert f"api_token={DEMO_TOKEN}" in line
    assert READ_ONLY_TOKEN in line
    assert "datastreams=65603,65607,65863,70001,70002,70003" in line
