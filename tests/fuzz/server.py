"""The fuzz server: a loopback proxy in front of the simulator that mutates answers.

Every request is passed to the simulator (a real aiohttp app on another port) and its
answer read whole; the answers of requests whose path matches the armed target get the
armed mutation, every other answer passes unchanged. The server counts the requests of
each example (amplification) and keeps the first mutated answer (the payload of a report).
"""

import re

import aiohttp
from aiohttp import web
from yarl import URL

from .mutations import Answer, Mutation

# Request headers not passed on: the proxy's own connection, not the provider's, and
# compression (the answer is mutated as plain bytes and sent back uncompressed).
_HOP_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "accept-encoding"}
)
# Answer headers passed back: the ones providers read.
_KEPT_HEADERS = ("Content-Type", "Retry-After")


class FuzzServer:
    """Proxy the simulator on a free loopback port; mutate what the target answers."""

    def __init__(self, upstream: str) -> None:
        """Proxy to `upstream` (the simulator's base URL)."""
        self.upstream = upstream.rstrip("/")
        self.target: re.Pattern[str] | None = None
        self.mutation: Mutation | None = None
        self.requests: list[str] = []
        self.mutated: list[Answer] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    def arm(self, target: str | None, mutation: Mutation | None) -> None:
        """Mutate the answers of paths matching `target` from now on; reset counts."""
        self.target = re.compile(target) if target else None
        self.mutation = mutation
        self.requests = []
        self.mutated = []

    async def start(self) -> str:
        """Serve on a free loopback port; return the base URL."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving and close the upstream session."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        answer = await self._upstream(request)
        mutation = self.mutation
        if (
            mutation is not None
            and self.target is not None
            and self.target.search(request.path)
            and not (mutation.first_only and self.mutated)
        ):
            answer = mutation.apply(answer)
            # The report shows the first; keeping every one (a discovery may ask a
            # thousand components, each answer megabytes) filled 24 GB once.
            if not self.mutated:
                self.mutated.append(answer)
        return await _send(request, answer)

    async def _upstream(self, request: web.Request) -> Answer:
        """Return the simulator's answer to the same request."""
        assert self._session is not None
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() not in _HOP_HEADERS
        }
        async with self._session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as response:
            body = await response.read()
            kept = {
                key: response.headers[key]
                for key in _KEPT_HEADERS
                if key in response.headers
            }
            return Answer(status=response.status, headers=kept, body=body)


async def _send(request: web.Request, answer: Answer) -> web.StreamResponse:
    """Send the answer; break the connection off where a Drop says."""
    if answer.drop_after is None:
        return web.Response(
            status=answer.status, body=answer.body, headers=answer.headers
        )
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.content_length = len(answer.body) + 1
    await response.prepare(request)
    await response.write(answer.body[: answer.drop_after])
    if request.transport is not None:
        request.transport.close()
    return response
