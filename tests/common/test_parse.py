"""The shared value parsers: every value a cloud sends is checked, or refused."""

from datetime import UTC, datetime, timedelta
import logging
import math

import pytest

from custom_components.cloud_energy_meters.providers import parse
from custom_components.cloud_energy_meters.providers.errors import InvalidResponse
from custom_components.cloud_energy_meters.providers.parse import ValueRefused

MOMENT = datetime(2026, 11, 14, 22, 13, 20, tzinfo=UTC)
EPOCH = int(MOMENT.timestamp())


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (2.5, 2.5), (" 3.25 ", 3.25), ("-4", -4.0), (1e12, 1e12)],
)
def test_numbers(value: object, expected: float) -> None:
    """Ints, floats and numeric text are numbers."""
    assert parse.number(value, "x") == expected


@pytest.mark.parametrize(
    "value",
    [
        True,
        None,
        "",
        "lots",
        "NaN",
        float("nan"),
        float("inf"),
        "-Infinity",
        1e13,
        10**400,
        "1e400",
        [1],
        {"v": 1},
    ],
)
def test_what_is_no_finite_meter_number_is_refused(value: object) -> None:
    """NaN, infinities, beyond a meter's range, bools and containers are refused."""
    with pytest.raises(ValueRefused) as refused:
        parse.number(value, "meter total")
    assert isinstance(refused.value, InvalidResponse)
    assert refused.value.what == "meter total"


def test_absent_numbers_and_amounts() -> None:
    """No value is None (never 0); an amount is never negative."""
    assert parse.optional_number(None, "x") is None
    assert parse.optional_number("  ", "x") is None
    assert parse.amount(0, "x") == 0.0
    with pytest.raises(ValueRefused):
        parse.amount(-0.001, "x")


@pytest.mark.parametrize(
    "value",
    [EPOCH, EPOCH * 1_000, EPOCH * 1_000_000, EPOCH * 1_000_000_000, float(EPOCH)],
    ids=["s", "ms", "us", "ns", "float"],
)
def test_epochs_in_any_unit(value: float) -> None:
    """Seconds, milli-, micro- and nanoseconds are told apart by their size."""
    assert parse.epoch(value, "t") == MOMENT
    assert parse.timestamp(value, "t") == MOMENT


@pytest.mark.parametrize(
    "value", [0, 1, -EPOCH, 10**30, float("nan"), "soon", True, 4_102_444_800]
)
def test_epochs_out_of_range_are_refused(value: object) -> None:
    """An epoch outside 2000..2100 in every unit is a clock error."""
    with pytest.raises(ValueRefused):
        parse.epoch(value, "t")


def test_iso_timestamps() -> None:
    """ISO 8601 with Z or an offset; without one, the given zone (or refused)."""
    assert parse.timestamp("2026-11-14T22:13:20Z", "t") == MOMENT
    assert parse.timestamp(" 2026-11-14T23:13:20+01:00 ", "t") == MOMENT
    assert parse.timestamp("2026-11-14T22:13:20", "t", UTC) == MOMENT
    with pytest.raises(ValueRefused):
        parse.timestamp("2026-11-14T22:13:20", "t")


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "40000-01-01",
        "1999-12-31T23:59:59Z",
        "yesterday",
        "2026-11-14T22:13:20+99:00",
        "9" * 100,
        None,
        [2026],
    ],
)
def test_timestamps_out_of_range_or_unreadable_are_refused(value: object) -> None:
    """Dates a meter cannot have and text that is no time are refused, never raised."""
    with pytest.raises(ValueRefused):
        parse.timestamp(value, "t", UTC)


def test_durations_and_lifetimes() -> None:
    """Lifetimes are seconds between 10 s and a year; other durations are bounded."""
    assert parse.lifetime(3600, "expires_in") == timedelta(hours=1)
    assert parse.lifetime("86400", "expires_in") == timedelta(days=1)
    for value in (0, -5, 1e12, "inf", "NaN", None, True):
        with pytest.raises(ValueRefused):
            parse.lifetime(value, "expires_in")
    assert parse.seconds(5, "wait", most=10) == 5
    with pytest.raises(ValueRefused):
        parse.seconds(11, "wait", most=10)


def test_retry_after_is_bounded_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Retry-After: seconds or an HTTP date, never negative, at most an hour (logged)."""
    assert parse.retry_after("5", "Cloud") == 5.0
    assert parse.retry_after("-3", "Cloud") == 0.0
    assert parse.retry_after("soon", "Cloud") is None
    assert parse.retry_after("nan", "Cloud") is None
    assert parse.retry_after("Tue, 99 Foo 2026 00:00:00 GMT", "Cloud") is None
    with caplog.at_level(logging.WARNING):
        for value in ("inf", "1e308", "86400", "Wed, 21 Oct 2099 07:28:00 GMT"):
            assert parse.retry_after(value, "Cloud") == parse.MAX_RETRY_AFTER
    assert len(caplog.records) == 4
    assert all(r.getMessage().startswith("Cloud asked to wait") for r in caplog.records)


@pytest.mark.parametrize(
    ("value", "expected"), [(7, "7"), (" m-1 ", "m-1"), ("a:b:c", "a:b:c")]
)
def test_identifiers(value: object, expected: str) -> None:
    """Ids are text: strings stripped, whole numbers written."""
    assert parse.identifier(value, "id") == expected


@pytest.mark.parametrize(
    "value",
    ["", "  ", True, 1.5, None, [1], {"id": 1}, "a/b", "..", "a\x00b", "x" * 300],
)
def test_what_is_no_id_is_refused(value: object) -> None:
    """Ids go into request paths: no separators, nothing that is no single segment."""
    with pytest.raises(ValueRefused):
        parse.identifier(value, "id")


def test_text() -> None:
    """Text fields: strings stripped, numbers written, anything else absent."""
    assert parse.text(" Meter ") == "Meter"
    assert parse.text(1234.0) == "1234"
    assert parse.text(12.5) == "12.5"
    assert parse.text(math.inf) is None
    assert parse.text(True) is None
    assert parse.text({"a": 1}) is None
    assert parse.text("x" * 1000) == "x" * parse.MAX_ID_LENGTH


def test_mapping() -> None:
    """An object is a dict; anything else is refused."""
    assert parse.mapping({"a": 1}, "answer") == {"a": 1}
    with pytest.raises(ValueRefused):
        parse.mapping([{"a": 1}], "answer")


async def test_zones_resolved_off_the_loop_with_a_default() -> None:
    """A zone the system has is read; an unknown, hostile or overlong one is the default."""
    assert str(await parse.async_zone("Europe/Zurich", "UTC")) == "Europe/Zurich"
    for name in ("Nowhere/Land", "../../etc/passwd", "/etc/passwd", "x" * 100, 5, ""):
        assert str(await parse.async_zone(name, "Europe/Zurich")) == "Europe/Zurich"
    with pytest.raises(ValueError, match="unknown default"):
        await parse.async_zone("Nowhere/Land", "Nowhere/Else")


def test_tokens_go_into_headers_as_they_are() -> None:
    """A token with a control character or a space cannot be sent: refused, unshown."""
    assert parse.token("eyJhbGciOi.x-y_z", "access token") == "eyJhbGciOi.x-y_z"
    for value in ("secret\x00", "sec ret", "sécret", "", None, 42, "x" * 20000):
        with pytest.raises(ValueRefused) as refused:
            parse.token(value, "access token")
        assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT1H", timedelta(hours=1)),
        ("P1D", timedelta(days=1)),
        ("PT24H", timedelta(days=1)),
        ("P0DT1H0M0S", timedelta(hours=1)),
        (" pt30s ", timedelta(seconds=30)),
        ("PT0H", timedelta(0)),
    ],
)
def test_iso_durations(value: str, expected: timedelta) -> None:
    """Fixed ISO 8601 durations, as FlexMeasures writes them, become spans."""
    assert parse.duration(value, "resolution") == expected


@pytest.mark.parametrize(
    "value",
    [
        "P1M",
        "P1Y",
        "P",
        "PT",
        "P1DT",
        "PT1.5H",
        "15 minutes",
        "-PT1H",
        15,
        None,
        "P99999D",
        "PT" + "1" * 50 + "H",
    ],
)
def test_durations_without_a_fixed_length_are_refused(value: object) -> None:
    """Months, years, fractions, negatives, text and the absurd are refused."""
    with pytest.raises(parse.ValueRefused):
        parse.duration(value, "resolution")
