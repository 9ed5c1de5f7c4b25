"""Energydata.dk batch upload (document section 4.1), against the simulator.

create → upload URL → PUT of the file to S3 (a presigned URL: the token must
not go there) → validate → poll → ingest → poll. The file is `;`-separated with
a `;<target>` header and `YYYY-MM-DDTHH:MM:SS.SSSZ` UTC stamps. The simulator's
steps take `step_delay` seconds, here 0.01, and the provider polls every 0.01 s.
"""

from datetime import UTC, datetime, timedelta
import re
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
    ImportOutcome,
)
from custom_components.cloud_energy_meters.providers.errors import (
    InvalidResponse,
    ProviderError,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.model import Channel, Reading
from tests.provider_factory import MakeProvider, build_provider, collect
from tests.simulator import Simulator
from tests.simulator.energydata import (
    BATTERY_STATE_ID,
    FIRST_IMPORT_ID,
    GAS_METER_ID,
    READ_ONLY_TOKEN,
    ROOM_TEMPERATURE_ID,
)

POLL = 0.01
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
# Days ahead of the simulator's now: no generated reading there, only uploaded ones.
FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


@pytest.fixture(autouse=True)
def quick_steps(simulator: Simulator) -> None:
    """Let validation and ingestion take 10 ms each."""
    simulator.energydata.step_delay = 0.01


def spy_statuses(
    provider: EnergydataProvider, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Record the status of every import answer the provider reads."""
    statuses: list[str] = []
    transport = provider._transport
    original = transport.request_json

    async def spy(method: str, path: str, **kwargs: Any) -> Any:
        answer = await original(method, path, **kwargs)
        if isinstance(answer, dict) and "status" in answer:
            statuses.append(answer["status"])
        return answer

    monkeypatch.setattr(transport, "request_json", spy)
    return statuses


def squeeze(statuses: list[str]) -> list[str]:
    """Drop repeats of the same status (polls that found no change)."""
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]


def steps(simulator: Simulator) -> list[tuple[str, str, int]]:
    """Return the import requests as (method, path, status), polls squeezed."""
    records = [
        (r.method, re.sub(r"/inbox/.*", "/inbox/…", r.path), r.status)
        for r in simulator.log_for("energydata")
        if r.path != "/datastreams/values"
    ]
    return [r for i, r in enumerate(records) if i == 0 or records[i - 1] != r]


async def channel_of(provider: EnergydataProvider, stream_id: int) -> Channel:
    """Return the provider's channel of a datastream."""
    inventory = await provider.async_discover([])
    return next(c for c in inventory.channels if c.ref[0] == str(stream_id))


async def test_upload_goes_through_every_status(
    simulator: Simulator,
    energydata: EnergydataProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stored → (S3 upload) → validating → ready → ingesting → done; then readable.

    The S3 PUT is answered 200: the simulator answers 400 to any request there
    that carries an Authorization header, so the token did not go to S3. The
    values API then serves exactly the uploaded rows, to the millisecond.
    """
    cloud = simulator.energydata
    statuses = spy_statuses(energydata, monkeypatch)
    rows = [
        (FUTURE + timedelta(minutes=k, milliseconds=137 * k), 20.5 + k / 4)
        for k in range(5)
    ]
    outcome = await energydata.async_upload(
        str(ROOM_TEMPERATURE_ID), rows, name="ha-test", poll=POLL
    )
    assert outcome == ImportOutcome(
        id=str(FIRST_IMPORT_ID), status="done", rows=5, errors=()
    )
    assert squeeze(statuses) == ["stored", "validating", "ready", "ingesting", "done"]
    base = f"/import/{FIRST_IMPORT_ID}"
    assert steps(simulator) == [
        ("POST", "/import", 201),
        ("GET", f"{base}/upload_url", 200),
        ("PUT", "/energydata-s3/import/inbox/…", 200),
        ("PUT", f"{base}/validate", 202),
        ("GET", base, 200),
        ("PUT", f"{base}/ingest", 202),
        ("GET", base, 200),
    ]
    records = simulator.log_for("energydata")
    assert records[0].query == {"importname": "ha-test"}
    s3 = next(r for r in records if r.path.startswith("/energydata-s3/"))
    assert s3.account is None  # no token: S3 requests are nobody's
    assert s3.query["X-Amz-Signature"] == "***"
    assert cloud.imports[FIRST_IMPORT_ID].status == "done"

    channel = await channel_of(energydata, ROOM_TEMPERATURE_ID)
    served = await collect(
        energydata, channel, FUTURE - timedelta(hours=1), FUTURE + timedelta(hours=1)
    )
    assert [(i.start, i.value) for i in served] == rows
    latest = await energydata.async_latest([channel])
    assert latest.readings[channel.key] == Reading(rows[-1][1], rows[-1][0])


async def test_the_file_format(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """`;<target>` header, UTC `…T…:…:….SSSZ` stamps, `;` separator, quotes if needed.

    Aware times of any zone become UTC; a whole float is written as an integer,
    which an integer datastream (70003, addressed by its topic) requires.
    """
    cloud = simulator.energydata
    local = datetime(2026, 7, 1, 14, 30, 5, 250999, tzinfo=COPENHAGEN)
    outcome = await energydata.async_upload(
        "dtu-b101/meter/gas/volume",
        [(local, 1234.0), (FUTURE, 1240)],
        name="gas",
        poll=POLL,
    )
    assert outcome.status == "done"
    (body,) = cloud.uploads.values()
    lines = body.decode().split("\n")
    assert lines == [
        ";dtu-b101/meter/gas/volume",
        "2026-07-01T12:30:05.250Z;1234",
        f"{FUTURE:%Y-%m-%dT%H:%M:%S}.000Z;1240",
        "",
    ]
    assert all(STAMP.fullmatch(line.split(";")[0]) for line in lines[1:-1])
    assert cloud.latest(GAS_METER_ID) == (int(FUTURE.timestamp() * 1000), 1240)


async def test_strings_with_separators_are_quoted(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """A string with `;` or quotes is quoted (RFC 4180) and arrives as written."""
    cloud = simulator.energydata
    text = 'fault "E42"; cells 3,4'
    outcome = await energydata.async_upload(
        str(BATTERY_STATE_ID),
        [(FUTURE, "idle"), (FUTURE + timedelta(seconds=1), text)],
        name="states",
        poll=POLL,
    )
    assert outcome.status == "done"
    (body,) = cloud.uploads.values()
    later = FUTURE + timedelta(seconds=1)
    assert body.decode().splitlines()[1:] == [
        f"{FUTURE:%Y-%m-%dT%H:%M:%S}.000Z;idle",
        f'{later:%Y-%m-%dT%H:%M:%S}.000Z;"fault ""E42""; cells 3,4"',
    ]
    channel = await channel_of(energydata, BATTERY_STATE_ID)
    latest = await energydata.async_latest([channel])
    assert latest.readings[channel.key] == Reading(text, later)
    assert [value for _, value in cloud.ingested[BATTERY_STATE_ID]] == ["idle", text]


async def test_invalid_file_ends_invalid_with_the_clouds_errors(
    simulator: Simulator,
    energydata: EnergydataProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A string into the integer datastream 70003: invalid, the cloud's errors kept.

    Nothing is ingested: no ingest request is sent.
    """
    statuses = spy_statuses(energydata, monkeypatch)
    outcome = await energydata.async_upload(
        str(GAS_METER_ID),
        [(FUTURE, 12), (FUTURE + timedelta(minutes=1), "twelve")],
        name="bad",
        poll=POLL,
    )
    assert outcome.status == "invalid"
    assert outcome.rows == 2
    assert outcome.errors == tuple(simulator.energydata.imports[int(outcome.id)].errors)
    assert outcome.errors == (
        "Row 3, column 2: 'twelve' is not a valid integer for datastream 70003.",
    )
    assert squeeze(statuses) == ["stored", "validating", "invalid"]
    assert not any(path.endswith("/ingest") for _, path, _ in steps(simulator))
    assert GAS_METER_ID not in simulator.energydata.ingested


async def test_token_without_import_permission(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """The read-only token may not import: RequestRejected 403 at the first step."""
    with pytest.raises(RequestRejected) as err:
        await make_provider("energydata", api_token=READ_ONLY_TOKEN).async_upload(
            "65603", [(FUTURE, 1.0)], name="nope", poll=POLL
        )
    assert err.value.status == 403
    assert steps(simulator) == [("POST", "/import", 403)]


async def test_authorization_sent_to_s3_would_be_refused(
    simulator: Simulator,
) -> None:
    """The control: a session adding Authorization everywhere fails at the S3 PUT.

    So the 200 of the other uploads does prove that no token went to S3.
    """
    async with ClientSession(headers={"Authorization": "Bearer leaked"}) as leaky:
        provider = build_provider(
            "energydata", leaky, api_url=simulator.url("energydata")
        )
        with pytest.raises(RequestRejected) as err:
            await provider.async_upload("65603", [(FUTURE, 1.0)], name="x", poll=POLL)
    assert err.value.status == 400
    assert steps(simulator)[2] == ("PUT", "/energydata-s3/import/inbox/…", 400)


async def test_a_step_that_never_settles(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """Validation that does not finish within the timeout is a ProviderError."""
    simulator.energydata.step_delay = 3600
    with pytest.raises(ProviderError, match="still validating"):
        await energydata.async_upload(
            "65603", [(FUTURE, 1.0)], name="slow", poll=POLL, timeout=0.05
        )


@pytest.mark.parametrize(
    ("path", "step"), [("/import$", "create"), ("/upload_url$", "upload URL")]
)
async def test_answers_without_their_id_or_url(
    simulator: Simulator, energydata: EnergydataProvider, path: str, step: str
) -> None:
    """An import answer without its id, or an upload URL answer without the URL."""
    simulator.faults.add("missing_fields", cloud="energydata", path=path)
    with pytest.raises(InvalidResponse):
        await energydata.async_upload("65603", [(FUTURE, 1.0)], name=step, poll=POLL)
    assert simulator.faults.pending == []
