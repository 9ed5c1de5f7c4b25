"""Energydata.dk (DTU): datastreams by HTTP (CSV), in real time by MQTT, and uploads.

What the API document leaves out and this module handles (see NOTES.md):
- A static token (Bearer) and no way to list its datastreams: the user names them
  (their id, what they measure, and optionally their MQTT topic).
- `GET /datastreams/values?ids=…&latest=true` serves every configured datastream in one
  request; `from`/`to` (both inclusive, `YYYY-MM-DDTHH:MM:SS`, UTC) a time span. The
  answer is headerless CSV `id,epoch_ms,value`, streamed: it is parsed a chunk at a
  time as it arrives (energydata_csv), and rows that do not parse, or carry a value
  no meter produces, are counted and reported, not fatal. Rows are not promised in
  time order: history holds an answer (at most HOLD_ROWS rows) until it is sorted,
  and reads a longer span as several answers. Errors come as JSON when
  `Accept: application/json` is sent.
- A reading with a duplicate timestamp replaces the old one: the last one wins.
- MQTT: `mqtts.energydata.dk:8883`, TLS, MQTT 3.1.1, the token as username and no
  password; single-value messages on `<prefix>/<suffix>`, multi-value ones on the
  prefix; publishing needs QoS 1 and its acknowledgement, and a refused publish makes
  the broker disconnect the client.
- Batch import: create, get an upload URL (an S3 presigned URL: it must not get the
  token), upload, validate, ingest, each step polled until it settles.

What a datastream's values mean is the user's word: a cumulative register (its
history becomes differences), an amount per interval whose timestamp marks the END or
the START of the interval, or a measurement.
"""

from array import array
import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import hashlib
from itertools import repeat
import json
import logging
from operator import add, sub, truediv
from typing import Any, Final, override
import uuid

import aiohttp
from yarl import URL

from . import contract, parse
from .energydata_csv import (
    MAX_MS,
    MAX_VALUE,
    MIN_MS,
    Piece,
    Records,
    Row,
    Tally,
    check,
    difference,
    exact_by_rounding,
    refuse,
)
from .errors import InvalidResponse, ProviderError, RequestRejected
from .form import Field, Form, Setting
from .model import (
    Account,
    Channel,
    Device,
    Interval,
    Inventory,
    Kind,
    Latest,
    Quantity,
    Reading,
    Role,
    Site,
)
from .mqtt import PushClient, publish_once
from .provider import Provider
from .ratelimit import RatePolicy
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

API_URL: Final = "https://admin.energydata.dk/api/v1"
MQTT_HOST: Final = "mqtts.energydata.dk"
MQTT_PORT: Final = 8883
BATCH_ROWS: Final = 1000
"""Intervals handed on at a time while a long span streams in."""
EPSILON: Final = timedelta(milliseconds=1)
HOLD_ROWS: Final = 50_000
"""Most rows of one history answer held to put them in time order (800 kB)."""
FIRST_PIECE: Final = timedelta(days=31)
"""The longest span read in one answer before the data's density is known."""
VALUES: Final = "/datastreams/values"
CHUNK_BYTES: Final = 1 << 15
"""Bytes of an answer parsed at a time (about 1,000 rows)."""
IMPORT_POLL: Final = 1.0
IMPORT_TIMEOUT: Final = 600.0

REGISTER: Final = "register"
AMOUNT_END: Final = "amount_end"
AMOUNT_START: Final = "amount_start"
MEASUREMENT: Final = "measurement"
MEANINGS: Final = (REGISTER, AMOUNT_END, AMOUNT_START, MEASUREMENT)
_KINDS = {
    REGISTER: Kind.REGISTER,
    AMOUNT_END: Kind.INTERVAL,
    AMOUNT_START: Kind.INTERVAL,
    MEASUREMENT: Kind.INSTANT,
}
# Quantities whose history belongs in the Energy dashboard.
_STATISTIC_WORDS = {
    Quantity.ENERGY: "energy",
    Quantity.WATER: "volume",
    Quantity.GAS: "gas",
}
# Quantities whose values are text (kept as written, numbers or not); every other
# channel takes numbers only.


@dataclass(frozen=True, slots=True)
class Datastream:
    """A datastream as the user described it (the API cannot list them)."""

    id: int
    name: str
    quantity: Quantity
    unit: str
    meaning: str
    topic: str | None = None
    role: Role = Role.MEASUREMENT
    """What it counts for the Energy dashboard, as the user said (energy only)."""

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any]) -> Datastream:
        """Read one datastream of the provider's settings."""
        role = str(raw.get("role") or "")
        return cls(
            id=int(raw["id"]),
            name=str(raw.get("name") or f"Datastream {raw['id']}"),
            quantity=Quantity(raw.get("quantity") or Quantity.OTHER),
            unit=str(raw.get("unit") or ""),
            meaning=str(raw.get("meaning") or MEASUREMENT),
            topic=str(raw["topic"]).strip("/") if raw.get("topic") else None,
            role=Role(role) if role in {r.value for r in Role} else Role.MEASUREMENT,
        )


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """Where a batch import ended: its id, its last status and the cloud's errors."""

    id: str
    status: str
    rows: int
    errors: tuple[str, ...] = ()


def _parse_value(text: str) -> float | str:
    """Return a number when the text is one, else the text (string datastreams)."""
    try:
        return float(text)
    except ValueError:
        return text


def _epoch_ms(moment: datetime) -> int:
    """Return a moment in whole epoch milliseconds (rounded down)."""
    return (moment - _EPOCH) // EPSILON


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND: Final = timedelta(seconds=1)


def valid_topic(topic: str) -> bool:
    """Tell whether a topic names one place: no wildcard, space or empty level.

    A dataset prefix (`dtu-b101`) or a datastream's topic (`dtu-b101/meter/main`).
    """
    levels = topic.split("/")
    return all(levels) and not any(c in topic for c in "#+ ")


class EnergydataProvider(Provider):
    """Energydata.dk through one API token, for the datastreams the user named."""

    key = "energydata"
    name = "Energydata.dk"
    default_url = API_URL
    # No limit is documented: be a polite client all the same.
    policy = RatePolicy(max_concurrency=2, request_seconds=0.5)
    form = Form(
        fields=(Field("api_token", secret=True),),
        advanced=(
            Setting("mqtt_host", MQTT_HOST),
            Setting("mqtt_port", MQTT_PORT, port=True),
        ),
    )
    push = True
    named_by_user = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Read the datastreams from the settings; set up the transport."""
        super().__init__(*args, **kwargs)
        self._transport = Transport(
            self.session, self.api_url, self.state.limiter, name=self.name
        )
        self.datastreams = {
            stream.id: stream
            for stream in (
                Datastream.from_settings(raw)
                for raw in self.settings.get("datastreams", ())
            )
        }
        self._groups = {
            int(raw["id"]): str(raw["group"])
            for raw in self.settings.get("datastreams", ())
            if raw.get("group")
        }
        self.skipped_rows = 0
        self._push: PushClient | None = None

    @property
    def _token(self) -> str:
        return str(self.credentials["api_token"])

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Mapping[str, Any]) -> str:
        """Count requests per token (a key in memory only, never stored)."""
        digest = hashlib.sha256(str(credentials["api_token"]).encode()).hexdigest()
        return f"{cls.key}:{URL(api_url).host}:{digest[:16]}"

    @staticmethod
    def new_account_id() -> str:
        """Return an id for a new set of datastreams (`account_id` in the settings).

        A token names nobody (and is replaced about yearly) and the datastreams
        change: only an id made once, when the user first adds them, stays. It names
        the account's site, so statistic ids, devices and entities keep it.
        """
        return uuid.uuid4().hex[:12]

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    # Account, site, channels ----------------------------------------------------------

    @property
    def _account(self) -> Account:
        return Account(id=str(self.settings.get("account_id") or ""), name=self.name)

    @property
    def _site(self) -> Site:
        # The datastreams' site is the account: statistic ids of its datastreams
        # start with its id, like every cloud's start with their site.
        return Site(id=self._account.id, name=self.name)

    @override
    async def async_login(self) -> Account:
        """Prove the token with one latest read of every named datastream.

        A datastream the token may not read, or that does not exist, fails it
        (RequestRejected 403 or 404): whoever replaces a token must be able to read
        what the account reads. With no datastream named, any known answer but 401
        proves the token.
        """
        if self.datastreams:
            await self._latest_rows(list(self.datastreams))
        else:
            await self._latest_rows([0], tolerate_missing=True)
        return self._account

    async def async_check(self, ids: Sequence[int]) -> None:
        """Check the token may read these datastreams (RequestRejected 403/404 if not)."""
        await self._latest_rows(list(ids))

    @override
    async def _list_sites(self) -> tuple[Site, ...]:
        """Return the account: its datastreams are named by the user, not listed."""
        return (self._site,)

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        """Describe the named datastreams (no request: the user named them)."""
        site = self._site
        devices = [
            Device(
                id=_device_id(site, stream),
                site_id=site.id,
                name=stream.name,
                parent_id=None,
                manufacturer=self.name,
                model=stream.topic.split("/", 1)[0] if stream.topic else None,
                serial_number=str(stream.id),
                kind="datastream",
                group=self._groups.get(stream.id),
            )
            for stream in self.datastreams.values()
        ]
        channels = [self._channel(site, stream) for stream in self.datastreams.values()]
        return Inventory(
            account=self._account,
            sites=(site,),
            channels=tuple(channels),
            listed=(site.id,),
            devices=tuple(devices),
        )

    def _channel(self, site: Site, stream: Datastream) -> Channel:
        word = _STATISTIC_WORDS.get(stream.quantity)
        history = word is not None and stream.meaning != MEASUREMENT
        return Channel(
            key=f"{site.id}:{stream.id}",
            site_id=site.id,
            name=stream.name,
            label=None,
            quantity=stream.quantity,
            kind=_KINDS.get(stream.meaning, Kind.INSTANT),
            unit=stream.unit,
            source=stream.name,
            source_id=str(stream.id),
            history=history,
            statistic=f"{site.id}_{stream.id}_{word}" if history else None,
            device_id=_device_id(site, stream),
            role=stream.role
            if stream.quantity is Quantity.ENERGY
            else Role.MEASUREMENT,
            attributes={"datastream_id": stream.id, "topic": stream.topic or ""},
            ref=(str(stream.id), stream.meaning),
        )

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        """Every datastream in one request."""
        return 1 if channels else 0

    # Reading CSV ------------------------------------------------------------------------

    @asynccontextmanager
    async def _answer(
        self, params: Mapping[str, str]
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """Send a values request; yield the CSV body as it streams in."""
        # A year of minute data takes a while to arrive: limit the waits, not the total.
        wait = self._transport.timeout
        async with self._transport.open(
            "GET",
            VALUES,
            params=params,
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(sock_connect=wait, sock_read=wait),
        ) as response:
            content_type = response.headers.get("Content-Type", "")
            if "json" in content_type or "html" in content_type:
                raise InvalidResponse(
                    f"Energydata.dk answered the values request with {content_type}"
                )
            yield response.content

    def _report(self, tally: Tally) -> None:
        """Count the rows a call refused and say why, once per call."""
        if not tally:
            return
        total = sum(tally.values())
        self.skipped_rows += total
        _LOGGER.warning(
            "%s sent %s row(s) on %s that were skipped: %s",
            self.name,
            total,
            VALUES,
            ", ".join(f"{count} {reason}" for reason, count in sorted(tally.items())),
        )

    async def _latest_rows(
        self, ids: Sequence[int], *, tolerate_missing: bool = False
    ) -> list[Row]:
        params = {"ids": ",".join(str(i) for i in ids), "latest": "true"}
        tally: Tally = {}
        rows: list[Row] = []
        try:
            async with self._answer(params) as content:
                async for batch in _batches(content, Records(tally)):
                    for fields in batch:
                        row = check(fields)
                        if isinstance(row, Row):
                            rows.append(row)
                        elif row is not None:
                            refuse(tally, row)
        except RequestRejected as err:
            if tolerate_missing and err.status == 404:
                return []  # the token works; a datastream is unknown
            raise
        finally:
            self._report(tally)
        return rows

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        """Read the latest value of every datastream in one request."""
        by_stream = {int(channel.ref[0]): channel for channel in channels}
        if not by_stream:
            return Latest(readings={})
        readings: dict[str, Reading] = {}
        for row in await self._latest_rows(list(by_stream)):
            channel = by_stream.get(row.stream)
            if channel is not None and (reading := _reading(channel, row)):
                readings[channel.key] = reading
        return Latest(readings=readings)

    # History --------------------------------------------------------------------------

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        """Stream a span of one datastream as intervals, a batch at a time.

        Registers become the differences between consecutive readings, labelled by
        the earlier reading (the first reading only sets the baseline); a register
        that goes down was reset: that difference is skipped. Amounts are their own
        intervals: one stamped at its end belongs to the instant just before it. A
        repeated timestamp: the row that came last wins.

        The API does not promise rows in time order, and what is yielded is stored
        at once: no row may arrive after the intervals it belongs among went out.
        So each answer is held whole (compactly, at most HOLD_ROWS rows) and put in
        order before any of it is yielded; a span holding more is read as several
        consecutive answers (`_pieces`). Usually the span is one answer, as before;
        a year of minute data is a dozen.
        """
        stream, meaning = int(channel.ref[0]), channel.ref[1]
        tally: Tally = {}
        chain = _Chain(stream, meaning, start, end)
        try:
            async for piece in self._pieces(
                stream, meaning == REGISTER, start, end, tally
            ):
                for batch in chain.batches(piece):
                    yield batch
                    del batch  # not held while the next one is built
                del piece  # not held while the next one is read
        finally:
            self._report(tally)

    async def _pieces(
        self, stream: int, register: bool, start: datetime, end: datetime, tally: Tally
    ) -> AsyncIterator[Piece]:
        """Read a span as consecutive answers of at most HOLD_ROWS rows each.

        The first answer covers at most FIRST_PIECE; each next one is sized from
        the rows the last one held. An answer past HOLD_ROWS is dropped and asked
        again for a shorter span (cut where the rows held so far put it). Bounds
        are whole seconds and inclusive, so neighbours share a second: a row
        belongs to the answer whose [begin, stop) holds it.
        """
        begin, lower, length = start, None, FIRST_PIECE
        ahead: asyncio.Task[tuple[bool, Piece, Tally]] | None = None
        try:
            while True:
                stop, last = _stop(begin, length, end)
                if ahead is None:
                    complete, piece, counted = await self._read_piece(
                        stream, register, begin, stop, end, lower
                    )
                else:
                    complete, piece, counted = await ahead
                    ahead = None
                if not complete:
                    if length <= _ONE_SECOND:
                        raise InvalidResponse(
                            f"Energydata.dk sent more than {HOLD_ROWS} rows of "
                            f"datastream {stream} within one second"
                        )
                    cut = datetime.fromtimestamp(piece.cut() // 1000, UTC)
                    length = max(min(cut - begin, length * 0.9), _ONE_SECOND)
                    continue
                for reason, count in counted.items():
                    refuse(tally, reason, count)
                if not last:
                    # The next answer, sized from this one, streams in while this
                    # one becomes intervals.
                    target = HOLD_ROWS * 3 // 4
                    length = min(length * 4, length * target / max(len(piece), 1))
                    length = max(length, _ONE_SECOND)
                    begin, lower = stop, _epoch_ms(stop)
                    ahead = await self._ahead(
                        stream, register, begin, length, end, lower
                    )
                yield piece
                del piece  # not held while the next one is read
                if last:
                    return
        finally:
            if ahead is not None:
                ahead.cancel()
                with suppress(asyncio.CancelledError):
                    await ahead

    async def _ahead(  # noqa: PLR0913
        self,
        stream: int,
        register: bool,
        begin: datetime,
        length: timedelta,
        end: datetime,
        lower: int,
    ) -> asyncio.Task[tuple[bool, Piece, Tally]]:
        """Start reading the next answer; return once it streams (or failed)."""
        opened = asyncio.Event()
        stop, _ = _stop(begin, length, end)
        task = asyncio.create_task(
            self._read_piece(stream, register, begin, stop, end, lower, opened)
        )
        waiter = asyncio.create_task(opened.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return task

    async def _read_piece(  # noqa: PLR0913
        self,
        stream: int,
        register: bool,
        begin: datetime,
        stop: datetime,
        end: datetime,
        lower: int | None,
        opened: asyncio.Event | None = None,
    ) -> tuple[bool, Piece, Tally]:
        """Read the answer for [begin, stop] into a piece; False past HOLD_ROWS rows.

        Rows before `lower`, or from `stop` on unless it is the span's end, belong
        to a neighbouring answer. `opened` is set once the answer streams.
        """
        last = stop >= end
        params = {
            "ids": str(stream),
            "from": _naive(begin),
            "to": _naive(end if last else stop),
        }
        low = MIN_MS if lower is None else lower
        high = MAX_MS + 1 if last else _epoch_ms(stop)
        piece, tally = Piece(register=register), dict[str, int]()
        try:
            async with self._answer(params) as content:
                if opened is not None:
                    opened.set()
                async for rows in _batches(content, Records(tally)):
                    piece.add(rows, stream, low, high, tally)
                    if len(piece) > HOLD_ROWS:
                        return False, piece, tally
        finally:
            if opened is not None:
                opened.set()
        return True, piece, tally

    # Push: MQTT -----------------------------------------------------------------------

    def _topics(self) -> tuple[dict[str, int], list[str]]:
        """Map each datastream topic to its id; list the topics to subscribe to."""
        by_topic = {
            stream.topic: stream.id
            for stream in self.datastreams.values()
            if stream.topic
        }
        prefixes = {topic.split("/", 1)[0] for topic in by_topic}
        return by_topic, [*by_topic, *sorted(prefixes)]

    @property
    def _broker(self) -> tuple[str, int]:
        """Return the MQTT broker's host and port (Energydata.dk's unless set)."""
        return (
            str(self.settings.get("mqtt_host") or MQTT_HOST),
            int(self.settings.get("mqtt_port") or MQTT_PORT),
        )

    @property
    @override
    def push_configured(self) -> bool:
        """Tell whether any datastream has an MQTT topic."""
        return bool(self._topics()[0])

    @override
    async def async_listen(
        self,
        channels: Sequence[Channel],
        on_readings: Callable[[dict[str, Reading]], None],
        on_state: Callable[[bool], None],
    ) -> None:
        """Receive readings by MQTT until cancelled; reconnect on any loss."""
        by_topic, topics = self._topics()
        by_stream = {int(channel.ref[0]): channel for channel in channels}

        def on_message(topic: str, payload: bytes) -> None:
            try:
                readings = self._parse_message(topic, payload, by_topic, by_stream)
            except InvalidResponse as err:
                _LOGGER.warning(
                    "Energydata.dk sent an unreadable MQTT message on %s: %s",
                    topic,
                    err,
                )
                return
            if readings:
                on_readings(readings)

        host, port = self._broker
        self._push = PushClient(
            host,
            port,
            username=self._token,
            ssl_context=self.ssl_context,
            topics=topics,
            on_message=on_message,
            on_state=on_state,
            name=self.name,
        )
        await self._push.run()

    @staticmethod
    def _parse_message(
        topic: str,
        payload: bytes,
        by_topic: Mapping[str, int],
        by_stream: Mapping[int, Channel],
    ) -> dict[str, Reading]:
        """Turn a single- or multi-value message into readings of known channels.

        InvalidResponse: the message is no `{timestamp, value}` object; a value
        that breaks the provider contract (NaN, a negative amount) is left out.
        """
        try:
            message = parse.mapping(json.loads(payload), "MQTT message")
        except (ValueError, RecursionError) as err:
            raise InvalidResponse("the MQTT message is not JSON") from err
        moment = parse.epoch(message.get("timestamp"), "MQTT timestamp")
        epoch_ms = round(moment.timestamp() * 1000)
        value = message.get("value")
        if isinstance(value, dict):  # multi-value, on the dataset prefix
            pairs = [
                (f"{topic}/{str(suffix).strip('/')}", item)
                for suffix, item in value.items()
            ]
        else:
            pairs = [(topic, value)]
        readings: dict[str, Reading] = {}
        unreadable: str | None = None
        for full_topic, item in pairs:
            stream = by_topic.get(full_topic)
            if stream is None or (channel := by_stream.get(stream)) is None:
                continue  # a topic of the dataset nobody named
            if (written := parse.text(item)) is None:
                unreadable = full_topic
                continue
            row = Row(stream, epoch_ms, _parse_value(written), written)
            if (reading := _reading(channel, row)) and not contract.reading(
                channel, reading
            ):
                readings[channel.key] = reading
        if unreadable is not None and not readings:
            raise parse.ValueRefused(f"MQTT value on {unreadable}", None)
        return readings

    async def async_publish(
        self,
        topic: str,
        value: float | Mapping[str, float],
        timestamp: datetime | None = None,
    ) -> None:
        """Publish a number (or suffix → number on a prefix); wait for the ack.

        On the listening connection while it is up, else on one of its own: publishing
        needs no datastream with a topic. An int stays an int; NaN and infinities
        raise ValueError (JSON has no such numbers).
        """
        moment = timestamp or datetime.now(UTC)
        payload = json.dumps(
            {"timestamp": int(moment.timestamp() * 1000), "value": value},
            allow_nan=False,
        ).encode()
        topic = topic.strip("/")
        if self._push is not None and self._push.connected:
            await self._push.publish(topic, payload)
            return
        host, port = self._broker
        await publish_once(
            host,
            port,
            username=self._token,
            ssl_context=self.ssl_context,
            topic=topic,
            payload=payload,
            name=self.name,
        )

    # Batch upload ---------------------------------------------------------------------

    async def async_upload(
        self,
        target: str,
        rows: Sequence[tuple[datetime, float | int | str]],
        *,
        name: str,
        poll: float = IMPORT_POLL,
        timeout: float = IMPORT_TIMEOUT,
    ) -> ImportOutcome:
        """Import rows into one datastream (id or topic) through the batch steps."""
        created = await self._transport.request_json(
            "POST", "/import", params={"importname": name}, headers=self._headers
        )
        import_id = parse.identifier(_field(created, "id", "import"), "import id")
        answer = await self._transport.request_json(
            "GET", f"/import/{import_id}/upload_url", headers=self._headers
        )
        upload_url = _field(answer, "upload_url", "upload URL")
        if not isinstance(upload_url, str) or not upload_url.startswith(
            ("https://", "http://")
        ):
            raise InvalidResponse("Energydata.dk's upload URL is no URL")
        body = _csv(target, rows)
        # A presigned URL: it carries its own signature; the token must not go there.
        async with self._transport.open(
            "PUT",
            upload_url,
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        ):
            pass
        await self._transport.request_json(
            "PUT", f"/import/{import_id}/validate", headers=self._headers
        )
        status = await self._settle(import_id, ("validating", "stored"), poll, timeout)
        if status[0] == "ready":
            await self._transport.request_json(
                "PUT", f"/import/{import_id}/ingest", headers=self._headers
            )
            status = await self._settle(
                import_id, ("ingesting", "ready"), poll, timeout
            )
        return ImportOutcome(
            id=import_id, status=status[0], rows=len(rows), errors=status[1]
        )

    async def _settle(
        self, import_id: str, busy: tuple[str, ...], poll: float, timeout: float
    ) -> tuple[str, tuple[str, ...]]:
        """Poll an import until its status leaves `busy`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self._transport.request_json(
                "GET", f"/import/{import_id}", headers=self._headers
            )
            status = parse.text(_field(state, "status", "import")) or "?"
            if status not in busy:
                errors = state.get("errors")
                if not isinstance(errors, list):
                    errors = [] if errors is None else [errors]
                return status, tuple(parse.text(e) or "?" for e in errors)
            if loop.time() > deadline:
                raise ProviderError(
                    f"Energydata.dk import {import_id} is still {status}"
                )
            await asyncio.sleep(poll)


def _device_id(site: Site, stream: Datastream) -> str:
    """Return a datastream's device id: its id is unique on one server only."""
    return f"{site.id}:datastream:{stream.id}"


def _naive(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class _Chain:
    """Turn a datastream's readings, in time order, into intervals in [start, end)."""

    def __init__(
        self, stream: int, meaning: str, start: datetime, end: datetime
    ) -> None:
        """Start before the first reading (a register's first is its baseline)."""
        self.stream = stream
        self.meaning = meaning
        self.start = start
        self.end = end
        self.previous: tuple[int, float, int] | None = None
        """A register's last reading: epoch ms, value, its piece's decimals."""

    def batches(self, piece: Piece) -> Iterator[list[Interval]]:
        """Yield a piece's intervals in batches of at most BATCH_ROWS.

        A slice of readings at a time, a column at a time (times, differences,
        intervals): Python's loops run in C.
        """
        stamps, values = piece.ordered()
        for first in range(0, len(stamps), BATCH_ROWS):
            last = first + BATCH_ROWS
            if batch := self._intervals(stamps[first:last], values[first:last], piece):
                yield batch
                del batch

    def _intervals(
        self, stamps: array[int], values: array[float], piece: Piece
    ) -> list[Interval]:
        moments = list(map(_FROM_EPOCH, map(truediv, stamps, _THOUSANDS), _UTC))
        if self.meaning == REGISTER:
            previous = self.previous
            self.previous = (stamps[-1], values[-1], piece.places)
            places = piece.places
            if previous is not None:
                moments.insert(0, _moment(previous[0]))
                values = array("d", (previous[1],)) + values
                places = (
                    -1 if min(places, previous[2]) < 0 else max(places, previous[2])
                )
            steps = _differences(values, places)
            intervals = list(map(Interval, moments, moments[1:], steps))
            clean = not steps or min(steps) >= 0
        else:
            if self.meaning == AMOUNT_END:
                intervals = list(
                    map(Interval, map(sub, moments, repeat(EPSILON)), moments, values)
                )
            else:
                intervals = list(
                    map(Interval, moments, map(add, moments, repeat(EPSILON)), values)
                )
            clean = True
        start, end = self.start, self.end
        if intervals and not (
            clean and start <= intervals[0].start and intervals[-1].start < end
        ):
            intervals = (
                [i for i in intervals if i.value >= 0 and start <= i.start < end]
                if self.meaning == REGISTER
                else [i for i in intervals if start <= i.start < end]
            )
        if self.meaning != REGISTER and intervals and min(values) < 0:
            if any(i.value < 0 for i in intervals):
                raise InvalidResponse(
                    f"Energydata.dk datastream {self.stream} has a negative amount"
                )
        return intervals


def _stop(begin: datetime, length: timedelta, end: datetime) -> tuple[datetime, bool]:
    """Return where an answer from `begin` ends (a whole second) and if it is the last."""
    stop = begin + length
    if stop >= end:
        return end, True
    return stop.replace(microsecond=0), False


def _moment(epoch_ms: int) -> datetime:
    """Return the aware UTC moment of epoch milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


# For map(): a moment of epoch ms is _FROM_EPOCH(ms / 1000, UTC), in C.
_FROM_EPOCH = datetime.fromtimestamp
_THOUSANDS = repeat(1000)
_UTC = repeat(UTC)


def _differences(values: array[float], places: int) -> list[float]:
    """Return the steps between consecutive register values, exactly (see difference)."""
    if len(values) < 2:
        return []
    if not exact_by_rounding(min(values), max(values), places):
        return list(map(difference, values, values[1:], repeat(places)))
    return list(map(round, map(sub, values[1:], values), repeat(places)))


async def _batches(
    content: aiohttp.StreamReader, records: Records
) -> AsyncIterator[list[list[str]]]:
    """Yield the records of an answer a chunk at a time, as the chunks arrive."""
    async for chunk in content.iter_chunked(CHUNK_BYTES):
        yield records.feed(chunk)
    yield records.finish()


def _reading(channel: Channel, row: Row) -> Reading | None:
    """Return the row as a reading; None for text where a number belongs (no value)."""
    value = row.text if channel.quantity in contract.TEXTUAL else row.value
    if isinstance(value, str) and channel.quantity not in contract.TEXTUAL:
        return None
    if isinstance(value, float) and not -MAX_VALUE < value < MAX_VALUE:
        return None  # NaN, an infinity or beyond any meter (an MQTT message)
    moment = datetime.fromtimestamp(row.epoch_ms / 1000, UTC)
    return Reading(value=value, time=moment)


def _field(payload: Any, key: str, what: str) -> Any:
    if not isinstance(payload, dict) or payload.get(key) in (None, ""):
        raise InvalidResponse(f"Energydata.dk {what} answer has no {key}")
    return payload[key]


def _csv(target: str, rows: Sequence[tuple[datetime, float | int | str]]) -> bytes:
    """Write the batch import file: `;`-separated, a header, UTC millisecond stamps."""
    lines = [f";{target}"]
    for moment, value in rows:
        stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{moment.microsecond // 1000:03d}Z"
        )
        # A whole float is written as an integer: integer datastreams accept only
        # digits, and Home Assistant's recorded states come back as floats.
        whole = isinstance(value, float) and value.is_integer()
        text = str(int(value)) if whole else str(value)
        if isinstance(value, str) and any(c in text for c in ';"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        lines.append(f"{stamp};{text}")
    return ("\n".join(lines) + "\n").encode()
