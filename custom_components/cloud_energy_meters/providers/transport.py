"""HTTP to a cloud on an injected aiohttp session: pacing, timeouts, status → error.

Every provider sends every request through here, so rate limits, timeouts, error
mapping and logging behave the same for all clouds. Log lines name the method, the path
and the status, never headers or bodies: those carry passwords and tokens.
"""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
import json
import logging
import time
from typing import Any

import aiohttp
from yarl import URL

from .cache import ResponseCache
from .errors import (
    AuthError,
    CannotConnect,
    InvalidResponse,
    RateLimited,
    RequestRejected,
)
from .parse import retry_after as parse_retry_after
from .ratelimit import RateLimiter

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
"""Seconds a whole JSON request may take."""

MAX_BODY = 64_000_000
"""Largest JSON answer read (bytes): the largest documented one (a year of a Locus
component's fields) is a few MB; more is a runaway answer, refused before it fills
memory. Streamed CSV is read as it arrives and has no such bound."""

RATE_LIMIT_RETRIES = 2
"""429 answers absorbed (after waiting Retry-After) before RateLimited reaches the caller."""

_MESSAGE_KEYS = ("message", "error_description", "error", "detail", "errors")


def _message_of(body: bytes) -> str:
    """Return the cloud's own short message from a JSON error body, if it has one.

    Only a message field is taken, never the raw body: errors are logged and shown,
    and a body may echo what was sent.
    """
    try:
        payload = json.loads(body)
    except ValueError, RecursionError:
        return "no message"
    if isinstance(payload, dict):
        for key in _MESSAGE_KEYS:
            if value := _flatten(payload.get(key)):
                return value[:200]
    return "no message"


def _flatten(value: Any, depth: int = 0) -> str:
    """Return the texts of a message: a string, a list of them, or fields of them.

    FlexMeasures, say, nests its reasons by field: `{"json": {"password":
    ["Missing data for required field."]}}` says "password: Missing data …".
    """
    if isinstance(value, str):
        return value
    if depth > 3:
        return ""
    if isinstance(value, list):
        return "; ".join(filter(None, (_flatten(item, depth + 1) for item in value)))
    if isinstance(value, dict):
        # A field's reasons are named by the field; wrappers and `_schema` are not.
        return "; ".join(
            text if key == "_schema" or isinstance(item, dict) else f"{key}: {text}"
            for key, item in value.items()
            if (text := _flatten(item, depth + 1))
        )
    return ""


class Transport:
    """Send requests to one cloud's API for one account."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        limiter: RateLimiter,
        *,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Bind the session, the API's base URL and the account's limiter."""
        self.session = session
        self.base_url = URL(base_url.rstrip("/"))
        self.limiter = limiter
        self.name = name
        self.timeout = timeout

    def url(self, path: str) -> URL:
        """Return the absolute URL of `path` (absolute URLs pass unchanged)."""
        if path.startswith(("http://", "https://")):
            return URL(path)
        return self.base_url.with_path(
            self.base_url.path.rstrip("/") + "/" + path.lstrip("/")
        )

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        hold: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request in the account's turn and yield the successful response.

        The turn is held until the body has been read, so a streamed answer counts
        against the concurrency limit for as long as it flows. `hold` is entered when
        the turn comes, before anything is sent (see RateLimiter.turn): the place to
        check that the request's token may still be sent.
        """
        url = self.url(path)
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            async with self.limiter.turn(hold):
                started = time.monotonic()
                try:
                    async with self.session.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        data=form if content is None else content,
                        headers=headers,
                        timeout=timeout or aiohttp.ClientTimeout(total=self.timeout),
                        allow_redirects=False,
                    ) as response:
                        _LOGGER.debug(
                            "%s %s %s -> %s (%.2f s)",
                            self.name,
                            method,
                            url.path,
                            response.status,
                            time.monotonic() - started,
                        )
                        if response.status == 429:
                            retry_after = parse_retry_after(
                                response.headers.get("Retry-After"), self.name
                            )
                            self.limiter.pause(retry_after)
                            # Never tell the caller to wait less than the cloud asked.
                            wait = max(
                                self.limiter.paused_for,
                                self.limiter.policy.default_retry_after
                                if retry_after is None
                                else retry_after,
                            )
                            if (
                                attempt < RATE_LIMIT_RETRIES
                                and wait <= self.limiter.policy.max_wait
                            ):
                                continue
                            raise RateLimited(
                                f"{self.name} asked to slow down (429)",
                                retry_after=wait,
                            )
                        if response.status >= 300:
                            await self._raise_for(response)
                        yield response
                        return
                except TimeoutError as err:
                    raise CannotConnect(
                        f"{self.name} did not answer {method} {url.path} in time"
                    ) from err
                except aiohttp.ClientError as err:
                    raise CannotConnect(
                        f"cannot reach {self.name} at {url.host}: {type(err).__name__}"
                    ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    async def _raise_for(self, response: aiohttp.ClientResponse) -> None:
        """Turn an unsuccessful status into the error the layer above acts on."""
        status = response.status
        path = response.url.path
        try:
            body = await response.read()
        except aiohttp.ClientError, TimeoutError:
            body = b""
        if status == 401:
            raise AuthError(f"{self.name} refused the credentials ({status})")
        if status >= 500:
            raise CannotConnect(f"{self.name} failed on its side ({status} on {path})")
        if 300 <= status < 400:
            raise InvalidResponse(f"{self.name} redirected {path} ({status})")
        detail = _message_of(body)
        raise RequestRejected(
            f"{self.name} rejected {path} ({status}): {detail}", status, detail
        )

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        hold: Callable[[], AbstractContextManager[object]] | None = None,
        cache: ResponseCache | None = None,
    ) -> Any:
        """Send a request and return its decoded JSON body (`hold`: as in `open`).

        With a `cache`, a GET answered with a Cache-Control max-age is not sent
        again while that answer is fresh.
        """
        key = ""
        if cache is not None and method == "GET":
            key = str(self.url(path).update_query(params or {}))
            hit, answer = cache.get(key)
            if hit:
                return answer
        async with self.open(
            method,
            path,
            params=params,
            json_body=json_body,
            form=form,
            headers=headers,
            hold=hold,
        ) as response:
            body = await self._read(response, method)
            cache_control = response.headers.get("Cache-Control")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError) as err:
            # ValueError: not JSON, or not UTF-8; RecursionError: nested too deep.
            raise InvalidResponse(
                f"{self.name} answered {method} {response.url.path} "
                "with something that is not JSON"
            ) from err
        if key and cache is not None:
            cache.put(key, answer, cache_control)
        return answer

    async def _read(self, response: aiohttp.ClientResponse, method: str) -> bytes:
        """Read a whole answer, refusing one larger than MAX_BODY."""
        if (response.content_length or 0) > MAX_BODY:
            raise InvalidResponse(self._too_large(response, method))
        body = bytearray()
        try:
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_BODY:
                    raise InvalidResponse(self._too_large(response, method))
        except (aiohttp.ClientError, TimeoutError) as err:
            raise CannotConnect(
                f"{self.name} broke off the answer to {method} {response.url.path}"
            ) from err
        return bytes(body)

    def _too_large(self, response: aiohttp.ClientResponse, method: str) -> str:
        return (
            f"{self.name} answered {method} {response.url.path} with more than "
            f"{MAX_BODY // 1_000_000} MB"
        )
