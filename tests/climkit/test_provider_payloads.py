"""Climkit parsing: timestamps, intervals, numbers, addresses, meters, sensors.

Unit tests of the module's parsers, and a stub Climkit for payloads the
simulator never sends (wrong shapes, nulls, strings for numbers, naive times).
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.cloud_energy_meters.providers.climkit import (
    ClimkitProvider,
    _address,
    _Meter,
    _meter_channels,
    _number,
    _sensor_channel,
    _site_channels,
    async_zone,
    interval_of,
    parse_timestamp,
)
from custom_components.cloud_energy_meters.providers.errors import InvalidResponse
from custom_components.cloud_energy_meters.providers.model import (
    Interval,
    Kind,
    Quantity,
    Reading,
    Role,
    Unit,
)
from tests.provider_factory import MakeProvider, collect
from tests.stub import StubServer

ZURICH = ZoneInfo("Europe/Zurich")
SITE = "site-1"


# --------------------------------------------------------------------------- parsers


def test_parse_timestamp_offsets_and_naive() -> None:
    """Offsets are honoured; a naive time is read in the site's zone."""
    assert parse_timestamp("2026-01-15 10:15:00+01:00", ZURICH) == datetime(
        2026, 1, 15, 9, 15, tzinfo=UTC
    )
    assert parse_timestamp(" 2026-07-15T10:15:00 ", ZURICH) == datetime(
        2026, 7, 15, 8, 15, tzinfo=UTC
    )
    assert parse_timestamp("2026-10-25 02:15:00+01:00", ZURICH) == datetime(
        2026, 10, 25, 1, 15, tzinfo=UTC
    )
    assert parse_timestamp("2026-10-25 02:15:00+02:00", ZURICH) == datetime(
        2026, 10, 25, 0, 15, tzinfo=UTC
    )


def test_parse_timestamp_epochs() -> None:
    """Integers are epoch seconds or milliseconds, told apart by magnitude."""
    moment = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    seconds = int(moment.timestamp())
    assert parse_timestamp(seconds, ZURICH) == moment
    assert parse_timestamp(seconds * 1000, ZURICH) == moment
    assert parse_timestamp(float(seconds) + 0.5, ZURICH) == moment + timedelta(
        milliseconds=500
    )
    assert parse_timestamp({"$date": seconds * 1000}, ZURICH) == moment
    assert parse_timestamp({"$date": "2026-11-21T12:00:00Z"}, ZURICH) == moment


@pytest.mark.parametrize(
    "value", [True, None, [1], {"date": 1}, "yesterday", "", {"$date": "nope"}]
)
def test_parse_timestamp_rejects(value: Any) -> None:
    """Anything that is not a time raises InvalidResponse."""
    with pytest.raises(InvalidResponse):
        parse_timestamp(value, ZURICH)


def test_interval_of() -> None:
    """15T labels the end, H the start, D the local day (23 h and 25 h on DST days)."""
    label = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
    assert interval_of(label, "15T", ZURICH) == (label - timedelta(minutes=15), label)
    assert interval_of(label, "H", ZURICH) == (label, label + timedelta(hours=1))
    spring = parse_timestamp("2026-03-29 00:00:00+01:00", ZURICH)
    start, end = interval_of(spring, "D", ZURICH)
    assert (start, end - start) == (spring, timedelta(hours=23))
    autumn = parse_timestamp("2026-10-25 00:00:00+02:00", ZURICH)
    start, end = interval_of(autumn, "D", ZURICH)
    assert (start, end - start) == (autumn, timedelta(hours=25))
    midday = parse_timestamp("2026-06-10 13:45:00+02:00", ZURICH)
    assert interval_of(midday, "D", ZURICH) == (
        datetime(2026, 6, 9, 22, 0, tzinfo=UTC),
        datetime(2026, 6, 10, 22, 0, tzinfo=UTC),
    )


async def test_zone_falls_back_to_zurich() -> None:
    """A missing, unknown or malformed time zone is read as Europe/Zurich."""
    assert await async_zone("America/New_York") == ZoneInfo("America/New_York")
    for name in (None, "", "Mars/Olympus_Mons", "../../etc/passwd", 1, ["UTC"]):
        assert await async_zone(name) == ZURICH


def test_number() -> None:
    """Numbers and numeric strings are floats; null or absent is None; junk raises."""
    assert _number({"v": 1}, "v") == 1.0
    assert _number({"v": 0.125}, "v") == 0.125
    assert _number({"v": "0.25"}, "v") == 0.25
    assert _number({"v": 0}, "v") == 0.0
    assert _number({"v": None}, "v") is None
    assert _number({}, "v") is None
    for junk in (True, "n/a", [1], {"x": 1}):
        with pytest.raises(InvalidResponse):
            _number({"v": junk}, "v")


def test_address() -> None:
    """Addresses join street and town; older payloads use city_name or city_ref."""
    full = {
        "street_name": "Rue",
        "street_number": "1",
        "postal_code": 1000,
        "city": "Lausanne",
    }
    assert _address({"address": full}) == "Rue 1, 1000 Lausanne"
    old = {"street_name": "Weg", "postal_code": 8001, "city_ref": "261"}
    assert _address({"address": old}) == "Weg, 8001 261"
    assert _address({"address": {"city_name": "Bern"}}) == "Bern"
    assert _address({"address": {}}) is None
    assert _address({"address": "Rue 1"}) is None
    assert _address({}) is None


@pytest.mark.parametrize(
    ("raw", "mode", "bus", "rule", "kind", "name"),
    [
        ({"id": "m", "prim_ad": 10}, "introduction", 10, False, "electricity", "m"),
        ({"id": "m", "prim_ad": "102"}, "production", 102, False, "electricity", "m"),
        (
            {"id": "m", "prim_ad": "12", "mode": "?"},
            "consumption",
            12,
            False,
            "electricity",
            "m",
        ),
        ({"id": "m", "prim_ad": "x"}, "consumption", None, False, "electricity", "m"),
        (
            {"id": 7, "virtual": True, "name": "V"},
            "consumption",
            None,
            True,
            "electricity",
            "V",
        ),
        (
            {"id": "m", "mode": "battery", "is_rule_meter": False, "virtual": True},
            "battery",
            None,
            False,
            "electricity",
            "m",
        ),
        (
            {"id": "m", "type": "cooling", "mode": "consumption"},
            "consumption",
            None,
            False,
            "cooling",
            "m",
        ),
    ],
)
def test_meter_parse(
    raw: dict[str, Any],
    mode: str,
    bus: int | None,
    rule: bool,
    kind: str,
    name: str,
) -> None:
    """Meters without a known mode get one from the bus address convention."""
    meter = _Meter.of(raw)
    assert (meter.mode, meter.bus_address, meter.rule, meter.type, meter.name) == (
        mode,
        bus,
        rule,
        kind,
        name,
    )
    assert meter.id == str(raw["id"])


@pytest.mark.parametrize("raw", [{}, {"id": ""}, "m-1", None, {"id": ["m"]}])
def test_meter_without_id(raw: Any) -> None:
    """A meter without a usable id is refused (ValueRefused, an InvalidResponse)."""
    with pytest.raises(InvalidResponse):
        _Meter.of(raw)


def test_unknown_meter_type() -> None:
    """A meter type the document does not list is energy, without registers."""
    meter = _Meter.of({"id": "ev", "type": "charge_point", "mode": "consumption"})
    channels = _meter_channels(SITE, meter)
    assert [c.key for c in channels] == [f"{SITE}:ev:total"]
    assert channels[0].unit == Unit.KWH
    assert "bus_address" not in channels[0].attributes
    (site_total,) = _site_channels(SITE, [meter])
    assert site_total.label == "site_consumption"
    assert site_total.role is Role.CONSUMPTION
    assert site_total.statistic == f"{SITE}_site_charge_point_consumption"


def test_cooling_meter() -> None:
    """A cooling meter counts energy with a heat register."""
    meter = _Meter.of({"id": "c", "type": "cooling", "mode": "consumption"})
    assert {c.key.rsplit(":", 1)[1]: c.kind for c in _meter_channels(SITE, meter)} == {
        "total": Kind.INTERVAL,
        "heat_energy_kwh": Kind.REGISTER,
    }


@pytest.mark.parametrize("raw", [{}, {"id": None}, "sensor", 3])
def test_sensor_without_id(raw: Any) -> None:
    """A sensor without an id raises InvalidResponse."""
    with pytest.raises(InvalidResponse):
        _sensor_channel(SITE, raw)


def test_sensor_named_after_its_id() -> None:
    """A sensor without name, unit or type is an OTHER measurement named by its id."""
    channel = _sensor_channel(SITE, {"id": "s9"})
    assert (channel.name, channel.unit, channel.quantity) == ("s9", "", Quantity.OTHER)
    assert channel.attributes == {"sensor_id": "s9", "sensor_type": "", "model": ""}


# --------------------------------------------------------------------------- a stub Climkit


@pytest.fixture
def stub_climkit(stub: StubServer, make_provider: MakeProvider) -> ClimkitProvider:
    """Return a provider of a stub Climkit that accepts the login."""
    stub.climkit_auth()
    return make_provider("climkit", api_url=stub.url)


@pytest.mark.parametrize(
    ("path", "body", "call"),
    [
        ("/all_installations", {"sites": []}, "list"),
        ("/installation_infos/s1", ["not", "an", "object"], "list"),
        ("/meter_info/s1", {"meters": []}, "discover"),
        ("/s1/sensors_list", None, "discover"),
    ],
)
async def test_wrong_shapes_are_invalid(
    stub: StubServer,
    stub_climkit: ClimkitProvider,
    path: str,
    body: Any,
    call: str,
) -> None:
    """Answers whose shape is not the documented one raise InvalidResponse."""
    stub.json("GET", "/all_installations", ["s1"])
    stub.json("GET", "/installation_infos/s1", {"name": "S1"})
    stub.json("GET", "/meter_info/s1", [])
    stub.json("GET", "/s1/sensors_list", [])
    stub.json("GET", path, body)
    request = (
        stub_climkit.async_list_sites()
        if call == "list"
        else stub_climkit.async_discover(["s1"])
    )
    with pytest.raises(InvalidResponse):
        await request


async def test_installation_fallbacks(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """`_id` is an id too; nameless sites are named by site_ref, else by id."""
    stub.json(
        "GET",
        "/all_installations",
        [
            {"_id": "s1"},
            {"id": "s2", "site_ref": "REF-2"},
            {"id": "s3", "name": "Three"},
        ],
    )
    stub.json(
        "GET", "/installation_infos/s1", {"site_ref": "REF-1", "timezone": "Nowhere/X"}
    )
    stub.json("GET", "/installation_infos/s2", {})
    sites = await stub_climkit.async_list_sites()
    assert [(s.id, s.name, s.timezone, s.address) for s in sites] == [
        ("s1", "REF-1", "Europe/Zurich", None),
        ("s2", "s2", "Europe/Zurich", None),
        ("s3", "Three", None, None),
    ]
    paths = [path for _, path, _ in stub.requests]
    assert "/installation_infos/s3" not in paths


def stub_site(stub: StubServer) -> None:
    """Program a one-site stub account with one meter and one sensor."""
    stub.json("GET", "/all_installations", [{"id": "s1", "name": "S1"}])
    stub.json(
        "GET", "/installation_infos/s1", {"name": "S1", "timezone": "Europe/Zurich"}
    )
    stub.json(
        "GET",
        "/meter_info/s1",
        [{"id": "m1", "type": "electricity", "mode": "production", "prim_ad": 101}],
    )
    stub.json("GET", "/s1/sensors_list", [{"id": "t1", "unit": "°C", "type": "temp"}])


async def test_nulls_are_absent_and_strings_are_numbers(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """Null values give no Reading and no Interval; numeric strings are read.

    Naive timestamps are site-local; rows come back sorted whatever their order.
    """
    stub_site(stub)
    inventory = await stub_climkit.async_discover(["s1"])
    stub.json(
        "POST",
        "/meter_data/s1/m1",
        [
            {"timestamp": "2026-01-15 10:30:00", "total": None},
            {"timestamp": "2026-01-15 10:15:00", "total": "0.5"},
        ],
    )
    stub.json(
        "POST",
        "/meter_data_raw/s1/m1",
        [
            {"timestamp": "2026-01-15 10:15:00+01:00", "en_im": 1.0, "en_ex": 5.0},
            {"timestamp": "2026-01-15 10:30:00+01:00", "en_im": 1.0, "en_ex": None},
        ],
    )
    stub.json("POST", "/site_data/s1/electricity", [])
    stub.json("GET", "/s1/sensor_data/t1", [{"timestamp": 1768470300, "value": None}])
    readings = (await stub_climkit.async_latest(inventory.channels)).readings
    assert readings == {
        "s1:m1:total": Reading(
            value=0.5,
            time=datetime(2026, 1, 15, 9, 15, tzinfo=UTC),
            start=datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        ),
        "s1:m1:en_im": Reading(
            value=1.0, time=datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
        ),
        "s1:m1:en_ex": Reading(
            value=5.0, time=datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
        ),
    }
    total = next(c for c in inventory.channels if c.key == "s1:m1:total")
    start = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert await collect(stub_climkit, total, start, start + timedelta(hours=1)) == [
        Interval(start=start, end=start + timedelta(minutes=15), value=0.5)
    ]


async def test_sites_without_usable_ids_are_left_out(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """Sites without a usable id are left out; a site listed twice is asked once."""
    stub.json(
        "GET",
        "/all_installations",
        [42.5, {"name": "no id"}, {"id": "a/b"}, "s1", "s1", {"id": True}],
    )
    stub.json("GET", "/installation_infos/s1", {"name": "S1"})
    sites = await stub_climkit.async_list_sites()
    assert [site.id for site in sites] == ["s1"]
    assert stub_climkit.refusals.total == 5
    assert [path for _, path, _ in stub.requests].count("/installation_infos/s1") == 1


async def test_a_series_that_is_no_list_is_invalid(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """A series that is not a list at all raises InvalidResponse."""
    stub_site(stub)
    inventory = await stub_climkit.async_discover(["s1"])
    stub.json("POST", "/meter_data/s1/m1", {"rows": []})
    total = [c for c in inventory.channels if c.key == "s1:m1:total"]
    with pytest.raises(InvalidResponse):
        await stub_climkit.async_latest(total)


@pytest.mark.parametrize(
    "row",
    [
        ["2026-01-15 10:30:00", 1],
        {"timestamp": "2026-01-15 10:30:00", "total": "lots"},
        {"timestamp": "2026-01-15 10:30:00", "total": "NaN"},
        {"timestamp": "2026-01-15 10:30:00", "total": 1e308},
        {"timestamp": "2026-01-15 10:30:00", "total": -0.2},
        {"timestamp": "sometime", "total": 1},
        {"timestamp": "40000-01-15 10:30:00", "total": 1},
        {"timestamp": 1e300, "total": 1},
        {"timestamp": [1], "total": 1},
        {"total": 1},
    ],
)
async def test_a_bad_row_is_left_out_and_the_others_kept(
    stub: StubServer,
    stub_climkit: ClimkitProvider,
    row: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad row is refused, counted and logged once; the row before it is read."""
    stub_site(stub)
    inventory = await stub_climkit.async_discover(["s1"])
    total = [c for c in inventory.channels if c.key == "s1:m1:total"]
    good = {"timestamp": "2026-01-15 10:15:00+01:00", "total": 0.5}
    stub.json("POST", "/meter_data/s1/m1", [good, row])
    readings = (await stub_climkit.async_latest(total)).readings
    assert readings["s1:m1:total"].value == 0.5
    assert stub_climkit.refusals.total == 1
    start = datetime(2026, 1, 15, 9, tzinfo=UTC)
    intervals = await collect(stub_climkit, total[0], start, start + timedelta(hours=1))
    assert [i.value for i in intervals] == [0.5]
    assert stub_climkit.refusals.total == 2
    assert len([r for r in caplog.records if "left out" in r.getMessage()]) == 2


async def test_sensor_without_points(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """A sensor that has no point yet has no Reading; its latest point wins otherwise."""
    stub_site(stub)
    inventory = await stub_climkit.async_discover(["s1"])
    sensor = [c for c in inventory.channels if c.kind is Kind.INSTANT]
    stub.json("GET", "/s1/sensor_data/t1", [])
    assert (await stub_climkit.async_latest(sensor)).readings == {}
    stub.json(
        "GET",
        "/s1/sensor_data/t1",
        [
            {"timestamp": 1768470300000, "value": 21.5},
            {"timestamp": 1768469400000, "value": "20"},
        ],
    )
    assert (await stub_climkit.async_latest(sensor)).readings == {
        "s1:sensor:t1": Reading(
            value=21.5, time=datetime.fromtimestamp(1768470300, UTC)
        )
    }


async def test_negative_amounts_are_refused(
    stub: StubServer, stub_climkit: ClimkitProvider
) -> None:
    """A negative amount would make the Energy dashboard's sum go down: left out."""
    stub_site(stub)
    inventory = await stub_climkit.async_discover(["s1"])
    total = next(c for c in inventory.channels if c.key == "s1:m1:total")
    stub.json(
        "POST",
        "/meter_data/s1/m1",
        [
            {"timestamp": "2026-01-15 10:15:00+01:00", "total": 0.5},
            {"timestamp": "2026-01-15 10:30:00+01:00", "total": -0.2},
        ],
    )
    start = datetime(2026, 1, 15, 9, tzinfo=UTC)
    intervals = await collect(stub_climkit, total, start, start + timedelta(hours=1))
    assert intervals == [Interval(start, start + timedelta(minutes=15), 0.5)]
    assert stub_climkit.refusals.total == 1
