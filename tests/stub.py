"""A programmable HTTP server on loopback: payloads and statuses the simulator never sends.

`stub` (a fixture every folder sees through tests/conftest.py) serves it; a test
says what each path answers.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from typing import Any

from aiohttp import web
import pytest

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class StubServer:
    """A loopback HTTP server answering what the test programs, path by path."""

    handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)
    url: str = ""
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def hang(self) -> None:
        """Keep a handler waiting until the server stops (a cloud that never answers)."""
        await self.released.wait()

    def on(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler`."""
        self.handlers[(method, path)] = handler

    def json(
        self,
        method: str,
        path: str,
        body: Any,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer `method path` with a fixed JSON body."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(
                text=json.dumps(body),
                status=status,
                content_type="application/json",
                headers=headers,
            )

        self.on(method, path, handler)

    def climkit_auth(self, valid_until: bool = True) -> None:
        """Serve a Climkit /auth that hands out one token, 15 minutes long."""
        expires = datetime.now(UTC) + timedelta(minutes=15)
        body: dict[str, Any] = {"access_token": "stub-token"}
        if valid_until:
            body["valid_until"] = {"$date": int(expires.timestamp() * 1000)}
        self.json("POST", "/auth", body)

    def locus_auth(self, body: Any = None) -> None:
        """Serve a Locus token endpoint that hands out one token, an hour long."""
        self.json(
            "POST",
            "/oauth/token",
            {"access_token": "stub-token", "expires_in": 3600}
            if body is None
            else body,
        )

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Record the request and run its handler (404 when none is programmed)."""
        self.requests.append((request.method, request.path, dict(request.headers)))
        handler = self.handlers.get((request.method, request.path))
        if handler is None:
            return web.json_response({"message": "no such stub"}, status=404)
        return await handler(request)


@pytest.fixture
async def stub(loopback: None) -> AsyncIterator[StubServer]:
    """Serve a programmable stub on a free loopback port."""
    server = StubServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    server.released.set()
    await runner.cleanup()
