"""Transport: URLs, status → error mapping, 429 handling, timeouts, logging.

The stub server plays a cloud that answers whatever each test programs.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
import logging
import socket

from aiohttp import ClientSession, web
import pytest

from custom_components.cloud_energy_meters.providers import (
    transport as transport_module,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    CannotConnect,
    InvalidResponse,
    ProviderError,
    RateLimited,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.parse import (
    MAX_RETRY_AFTER,
    retry_after,
)
from custom_components.cloud_energy_meters.providers.ratelimit import (
    RateLimiter,
    RatePolicy,
)
from custom_components.cloud_energy_meters.providers.transport import (
    RATE_LIMIT_RETRIES,
    Transport,
)
from tests.stub import StubServer


def transport_for(
    session: ClientSession, url: str, policy: RatePolicy | None = None
) -> Transport:
    """Return a transport to `url` with its own limiter."""
    return Transport(session, url, RateLimiter(policy or RatePolicy()), name="Stub")


def test_parse_retry_after_seconds() -> None:
    """Retry-After in seconds is read as a float, never negative; junk is None."""
    assert retry_after("5", "Stub") == 5.0
    assert retry_after("1.5", "Stub") == 1.5
    assert retry_after("-3", "Stub") == 0.0
    assert retry_after(None, "Stub") is None
    assert retry_after("", "Stub") is None
    assert retry_after("soon", "Stub") is None


def test_parse_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is the time left until then (0 once past)."""
    later = datetime.now(UTC) + timedelta(seconds=120)
    seconds = retry_after(format_datetime(later, usegmt=True), "Stub")
    assert seconds is not None
    assert 117 <= seconds <= 120
    past = datetime.now(UTC) - timedelta(hours=1)
    assert retry_after(format_datetime(past, usegmt=True), "Stub") == 0.0


def test_url_joins_base_path(session: ClientSession) -> None:
    """Relative paths are appended to the base path; absolute URLs pass unchanged."""
    transport = transport_for(session, "https://api.example.com/api/v1/")
    assert str(transport.url("/auth")) == "https://api.example.com/api/v1/auth"
    assert str(transport.url("site/1")) == "https://api.example.com/api/v1/site/1"
    assert str(transport.url("https://other.example.com/x")) == (
        "https://other.example.com/x"
    )


async def test_json_answer(stub: StubServer, session: ClientSession) -> None:
    """A 200 JSON answer is decoded; params, JSON body and headers are sent."""
    seen: list[tuple[str, dict[str, str], object]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((request.path_qs, dict(request.headers), await request.json()))
        return web.json_response({"ok": [1, 2]})

    stub.on("POST", "/api/thing", handler)
    transport = transport_for(session, f"{stub.url}/api")
    answer = await transport.request_json(
        "POST",
        "/thing",
        params={"a": "1"},
        json_body={"b": 2},
        headers={"X-Test": "yes"},
    )
    assert answer == {"ok": [1, 2]}
    assert seen[0][0] == "/api/thing?a=1"
    assert seen[0][1]["X-Test"] == "yes"
    assert seen[0][2] == {"b": 2}
    assert transport.limiter.requests == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, RequestRejected),  # forbidden: logging in again would not help
        (500, CannotConnect),
        (502, CannotConnect),
        (503, CannotConnect),
        (400, RequestRejected),
        (404, RequestRejected),
        (410, RequestRejected),
        (422, RequestRejected),
    ],
)
async def test_status_mapping(
    stub: StubServer,
    session: ClientSession,
    status: int,
    error: type[ProviderError],
) -> None:
    """Each unsuccessful status becomes the error the layer above acts on."""
    stub.json("GET", "/x", {"message": "site 42 not found"}, status=status)
    transport = transport_for(session, stub.url)
    with pytest.raises(ProviderError) as caught:
        await transport.request_json("GET", "/x")
    assert type(caught.value) is error
    if error is RequestRejected:
        assert isinstance(caught.value, RequestRejected)
        assert caught.value.status == status
        assert "site 42 not found" in str(caught.value)
        assert str(status) in str(caught.value)
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"error_description": "bad grant"}', "bad grant"),
        ('{"detail": "no such asset"}', "no such asset"),
        ('{"errors": ["unit missing", "no start"]}', "unit missing; no start"),
        (
            '{"message": {"combined_sensor_data_description": {"_schema": '
            '["Required unit for this sensor is kW, got incompatible unit: EUR"]}}}',
            "rejected /x (400): Required unit for this sensor is kW, got incompatible",
        ),
        (
            '{"message": {"json": {"password": ["Missing data for required field."]}}}',
            "password: Missing data for required field.",
        ),
        ('{"message": {"a": {"b": {"c": {"d": {"e": ["too deep"]}}}}}}', "no message"),
        ('{"message": {"a": [1, 2]}}', "no message"),
        ('{"other": 1}', "no message"),
        ('["a list"]', "no message"),
        ("plain text refusal", "no message"),
    ],
)
async def test_rejection_message(
    stub: StubServer, session: ClientSession, body: str, expected: str
) -> None:
    """RequestRejected carries the server's own message field, never its raw body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, status=400)

    stub.on("GET", "/x", handler)
    with pytest.raises(RequestRejected) as caught:
        await transport_for(session, stub.url).request_json("GET", "/x")
    assert expected in str(caught.value)


async def test_long_rejection_message_is_cut(
    stub: StubServer, session: ClientSession
) -> None:
    """A long error message is cut to 200 characters (room for a field's name)."""
    stub.json("GET", "/x", {"message": "x" * 1000}, status=400)
    with pytest.raises(RequestRejected) as caught:
        await transport_for(session, stub.url).request_json("GET", "/x")
    assert "x" * 200 in str(caught.value)
    assert "x" * 201 not in str(caught.value)


async def test_redirect_is_invalid_response(
    stub: StubServer, session: ClientSession
) -> None:
    """A redirect is not followed (it could leak the token elsewhere): InvalidResponse."""

    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/elsewhere")

    stub.on("GET", "/x", handler)
    stub.json("GET", "/elsewhere", {"ok": True})
    with pytest.raises(InvalidResponse):
        await transport_for(session, stub.url).request_json("GET", "/x")
    assert [path for _, path, _ in stub.requests] == ["/x"]


@pytest.mark.parametrize("body", ["not json", "", '{"truncated": '])
async def test_non_json_is_invalid_response(
    stub: StubServer, session: ClientSession, body: str
) -> None:
    """A 200 answer that is not JSON raises InvalidResponse."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="application/json")

    stub.on("GET", "/x", handler)
    with pytest.raises(InvalidResponse):
        await transport_for(session, stub.url).request_json("GET", "/x")


async def test_429_is_retried_after_retry_after(
    stub: StubServer, session: ClientSession
) -> None:
    """A 429 pauses the limiter for Retry-After, then the request is sent again."""
    answers = iter([429, 429, 200])
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        arrivals.append(asyncio.get_running_loop().time())
        status = next(answers)
        if status == 429:
            return web.json_response({}, status=429, headers={"Retry-After": "0.2"})
        return web.json_response({"ok": True})

    stub.on("GET", "/x", handler)
    transport = transport_for(session, stub.url)
    assert await transport.request_json("GET", "/x") == {"ok": True}
    assert len(arrivals) == 3
    assert all(b - a >= 0.19 for a, b in zip(arrivals, arrivals[1:], strict=False))
    assert transport.limiter.throttled == 2


async def test_429_without_retry_after_uses_default(
    stub: StubServer, session: ClientSession
) -> None:
    """Without Retry-After the policy's default pause applies."""
    answers = iter([429, 200])

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({}, status=next(answers))

    stub.on("GET", "/x", handler)
    transport = transport_for(session, stub.url, RatePolicy(default_retry_after=0.05))
    assert await transport.request_json("GET", "/x") == {}
    assert transport.limiter.throttled == 1


async def test_429_too_often_raises_rate_limited(
    stub: StubServer, session: ClientSession
) -> None:
    """After RATE_LIMIT_RETRIES retries a further 429 becomes RateLimited."""
    stub.json("GET", "/x", {}, status=429, headers={"Retry-After": "0.1"})
    transport = transport_for(session, stub.url)
    with pytest.raises(RateLimited) as caught:
        await transport.request_json("GET", "/x")
    assert len(stub.requests) == RATE_LIMIT_RETRIES + 1
    assert caught.value.retry_after >= 0.1


async def test_long_retry_after_raises_at_once(
    stub: StubServer, session: ClientSession
) -> None:
    """A Retry-After longer than max_wait is not waited for: RateLimited at once."""
    stub.json("GET", "/x", {}, status=429, headers={"Retry-After": "3600"})
    transport = transport_for(session, stub.url, RatePolicy(max_wait=60))
    with pytest.raises(RateLimited) as caught:
        await transport.request_json("GET", "/x")
    assert len(stub.requests) == 1
    assert caught.value.retry_after >= 3600
    assert transport.limiter.paused_for > 3500


async def test_timeout_is_cannot_connect(
    stub: StubServer, session: ClientSession
) -> None:
    """A cloud that does not answer within the timeout raises CannotConnect."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await stub.hang()
        return web.json_response({})

    stub.on("GET", "/x", handler)
    transport = transport_for(session, stub.url)
    transport.timeout = 0.2
    with pytest.raises(CannotConnect, match="in time"):
        await transport.request_json("GET", "/x")


async def test_unreachable_is_cannot_connect(
    loopback: None, session: ClientSession
) -> None:
    """A refused connection raises CannotConnect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = transport_for(session, f"http://127.0.0.1:{port}")
    with pytest.raises(CannotConnect, match="cannot reach"):
        await transport.request_json("GET", "/x")


async def _broken_body(request: web.Request, status: int) -> web.StreamResponse:
    """Promise 100 bytes, send a few, then drop the connection."""
    response = web.StreamResponse(status=status)
    response.content_length = 100
    response.content_type = "application/json"
    await response.prepare(request)
    await response.write(b'{"message": "')
    assert request.transport is not None
    request.transport.close()
    return response


async def test_broken_off_answer_is_cannot_connect(
    stub: StubServer, session: ClientSession
) -> None:
    """An answer cut off mid-body raises CannotConnect, not InvalidResponse."""
    stub.on("GET", "/x", lambda request: _broken_body(request, 200))
    with pytest.raises(CannotConnect, match="broke off"):
        await transport_for(session, stub.url).request_json("GET", "/x")


async def test_broken_off_error_body_keeps_the_status(
    stub: StubServer, session: ClientSession
) -> None:
    """An error answer whose body breaks off still maps by its status."""
    stub.on("GET", "/x", lambda request: _broken_body(request, 404))
    with pytest.raises(RequestRejected) as caught:
        await transport_for(session, stub.url).request_json("GET", "/x")
    assert caught.value.status == 404


async def test_logs_name_path_and_status_only(
    stub: StubServer, session: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The debug line names method, path and status, never query, headers or body."""
    caplog.set_level(logging.DEBUG, logger="custom_components.cloud_energy_meters")
    stub.json("POST", "/x", {"token": "answer-secret"})
    await transport_for(session, stub.url).request_json(
        "POST",
        "/x",
        params={"key": "query-secret"},
        json_body={"password": "body-secret"},
        headers={"Authorization": "Bearer header-secret"},
    )
    messages = [record.getMessage() for record in caplog.records]
    assert any("POST /x -> 200" in message for message in messages), messages
    for message in messages:
        assert "secret" not in message


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"[" * 100_000 + b"]" * 100_000, {}),  # nested too deep to decode
        (b'{"a": "\xff\xfe"}', {}),  # not UTF-8
        (b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"}),
        (b"", {}),
        (b'{"a": 1', {}),  # cut off
    ],
    ids=["deep", "not-utf8", "html", "empty", "truncated"],
)
async def test_bodies_that_cannot_be_decoded_are_invalid(
    stub: StubServer, session: ClientSession, body: bytes, headers: dict[str, str]
) -> None:
    """Any body that is no JSON ends as InvalidResponse, never another exception."""

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers=headers)

    stub.on("GET", "/x", handler)
    with pytest.raises(InvalidResponse):
        await transport_for(session, stub.url).request_json("GET", "/x")


@pytest.mark.parametrize("declared", [True, False], ids=["length", "chunked"])
async def test_a_runaway_body_is_refused_before_it_fills_memory(
    stub: StubServer,
    session: ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    declared: bool,
) -> None:
    """An answer beyond MAX_BODY is InvalidResponse, announced or streamed."""
    monkeypatch.setattr(transport_module, "MAX_BODY", 100_000)

    async def handler(request: web.Request) -> web.StreamResponse:
        if declared:
            return web.Response(body=b"[" + b"1," * 60_000 + b"1]")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(20):
            await response.write(b"1," * 5_000)
        return response

    stub.on("GET", "/x", handler)
    with pytest.raises(InvalidResponse, match="more than"):
        await transport_for(session, stub.url).request_json("GET", "/x")


@pytest.mark.parametrize("retry_after", ["inf", "1e308", "99999999"])
async def test_retry_after_beyond_an_hour_pauses_an_hour(
    stub: StubServer, session: ClientSession, retry_after: str
) -> None:
    """A 429 asking to wait forever pauses the account an hour at most."""
    stub.json("GET", "/x", {}, status=429, headers={"Retry-After": retry_after})
    transport = transport_for(session, stub.url)
    with pytest.raises(RateLimited) as caught:
        await transport.request_json("GET", "/x")
    assert caught.value.retry_after == MAX_RETRY_AFTER
    assert 3500 < transport.limiter.paused_for <= MAX_RETRY_AFTER
