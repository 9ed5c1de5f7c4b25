"""Fault injection: make the next N matching requests fail in a chosen way.

Clouds fail in a handful of ways that the integration must survive (server
errors, hangs, garbage bodies, bodies that parse but lack fields, surprise
401s, rate limiting). Tests queue such faults here; each cloud consults the
queue after it has authenticated a request and before its normal handler, so
a fault never hides an authentication bug and always lands on a real request.
"""

import asyncio
from dataclasses import dataclass
import re
from typing import Any, Literal, get_args
import zlib

from aiohttp import web

type FaultKind = Literal[
    "http_500", "timeout", "malformed_json", "missing_fields", "http_401", "http_429"
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind.__value__))

MALFORMED_BODY = '[{"timestamp": "2026-01-01 00:15:00+01:00", "total": 0.1'


@dataclass(slots=True)
class Fault:
    """A queued fault; ``remaining`` counts down as matching requests consume it."""

    kind: FaultKind
    remaining: int
    cloud: str | None
    path: str | None

    def matches(self, cloud: str, path: str, *, is_auth: bool) -> bool:
        """Tell whether this fault applies to a request of ``cloud`` at ``path``.

        Token endpoints are only hit when the path filter names them: a test
        that breaks "the next data request" must not break the login first.
        """
        if self.cloud is not None and self.cloud != cloud:
            return False
        if self.path is None:
            return not is_auth
        return re.search(self.path, path) is not None


class Faults:
    """The queue of pending faults, shared by every cloud of one simulator."""

    def __init__(self) -> None:
        """Start with no faults and the documented 60 s hang for ``timeout``."""
        self.timeout_seconds: float = 60.0
        self._pending: list[Fault] = []
        self._release = asyncio.Event()

    @property
    def pending(self) -> list[Fault]:
        """Faults not yet consumed, in the order they will be tried."""
        return list(self._pending)

    def add(
        self,
        kind: str,
        count: int = 1,
        *,
        cloud: str | None = None,
        path: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``kind``.

        ``path`` is a regular expression searched in the path below the cloud
        prefix (``re.search``), ``cloud`` restricts the fault to one cloud.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}"
            )
        if count < 1:
            raise ValueError("count must be at least 1")
        if path is not None:
            re.compile(path)
        self._pending.append(Fault(kind, count, cloud, path))  # type: ignore[arg-type]

    def clear(self) -> None:
        """Drop every pending fault."""
        self._pending.clear()

    def take(self, cloud: str, path: str, *, is_auth: bool = False) -> FaultKind | None:
        """Consume and return the first pending fault matching this request."""
        for fault in self._pending:
            if fault.matches(cloud, path, is_auth=is_auth):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._pending.remove(fault)
                return fault.kind
        return None

    def release_sleepers(self) -> None:
        """Wake every request hanging in a ``timeout`` fault (the server is stopping)."""
        self._release.set()

    def rearm(self) -> None:
        """Let ``timeout`` faults hang again after a restart."""
        self._release = asyncio.Event()

    async def respond(self, kind: FaultKind) -> web.Response | None:
        """Answer a request hit by ``kind``; None for ``missing_fields``.

        ``missing_fields`` needs the real payload to damage, so the cloud runs
        its handler and passes the result through ``drop_required_fields``.
        """
        match kind:
            case "http_500":
                return web.json_response(
                    {"message": "Internal Server Error"}, status=500
                )
            case "http_401":
                return web.json_response({"message": "Unauthorized"}, status=401)
            case "http_429":
                return web.json_response(
                    {"message": "Too many requests"},
                    status=429,
                    headers={"Retry-After": "1"},
                )
            case "malformed_json":
                return web.Response(
                    text=MALFORMED_BODY, status=200, content_type="application/json"
                )
            case "timeout":
                await self._hang()
                return web.json_response({"message": "Gateway Timeout"}, status=504)
            case "missing_fields":
                return None

    async def _hang(self) -> None:
        """Sleep ``timeout_seconds`` unless the simulator stops first."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._release.wait()
        except TimeoutError:
            return


def drop_required_fields(payload: Any, identity_keys: tuple[str, ...]) -> Any:
    """Damage a valid payload the way a half-broken backend would.

    Rows keep the right JSON shape but lose required keys: even rows lose
    their identity keys (``id``, ``timestamp``…), odd rows lose everything
    else (their values). A single object loses its identity keys; plain
    strings in a list become empty strings. Clients must reject such rows
    instead of storing zeros or crashing.
    """
    if isinstance(payload, dict):
        return {
            key: value for key, value in payload.items() if key not in identity_keys
        }
    if not isinstance(payload, list):
        return payload
    damaged: list[Any] = []
    for index, row in enumerate(payload):
        if isinstance(row, dict):
            keep_identity = index % 2 == 1
            damaged.append(
                {
                    key: value
                    for key, value in row.items()
                    if (key in identity_keys) == keep_identity
                }
            )
        elif isinstance(row, str):
            damaged.append("")
        else:
            damaged.append(row)
    return damaged


def as_number(text: str) -> int:
    """Write a text field as the JSON number a careless backend would send.

    Its digits when it has some ("LG120-0042187" -> 1200042187), else a number made
    from it: the same text always gives the same number.
    """
    digits = "".join(char for char in text if char.isdigit())
    return int(digits) if digits else zlib.crc32(text.encode())
