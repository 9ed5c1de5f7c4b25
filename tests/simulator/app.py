"""The simulator: one aiohttp server hosting every simulated cloud under its prefix.

Tests start it in their own event loop on a random loopback port; the CLI
(``python -m tests.simulator``) runs the same object as a demo backend. The
cloud-independent machinery lives here (server life cycle, request log, JSON
errors); each cloud is a sub-application built by its own module.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
import json
import logging
import time
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from .climkit import ClimkitCloud
from .clock import Now, utc_now
from .copper import CopperCloud
from .energydata import EnergydataCloud
from .faults import Faults
from .flexmeasures import FlexMeasuresCloud
from .locus import LocusCloud
from .requestlog import ACCOUNT, ARRIVAL, MASK, RequestRecord, mask_secrets

_LOGGER = logging.getLogger(__name__)

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Secrets beyond requestlog.SECRET_KEYS: Locus's and Copper's refresh tokens are
# credentials too, and so are the signature of an Energydata presigned S3 upload URL and
# Copper's authorization code, PKCE verifier and e-mailed one-time code, and a
# FlexMeasures token sent as a query parameter.
EXTRA_SECRET_KEYS = frozenset(
    {"refresh_token", "X-Amz-Signature", "code", "code_verifier", "otp", "auth_token"}
)


class Cloud(Protocol):
    """What the simulator needs from a simulated cloud module."""

    name: str
    prefix: str

    def build_app(self) -> web.Application:
        """Return a fresh sub-application serving the cloud below ``prefix``."""
        ...


class RootRoutes(Protocol):
    """A cloud that also serves paths at the server root, outside its prefix.

    Locus clients derive the token URL from the API URL's origin
    (``/oauth/token``), so that path belongs to Locus although it lies outside
    ``/locus/v3``; the log attributes it to the cloud by ``root_paths``. A root
    path ending in ``/`` is a prefix: Energydata's S3 inbox ``/energydata-s3/…``.
    """

    name: str
    root_paths: tuple[str, ...]

    def add_root_routes(self, app: web.Application) -> None:
        """Add the cloud's root routes to the root application."""
        ...


class Simulator:
    """All simulated clouds behind one HTTP server, plus the knobs tests turn."""

    def __init__(self, now: Now | None = None) -> None:
        """Create the clouds; ``now`` replaces the wall clock (default: real UTC now)."""
        self.now: Now = now or utc_now
        self.log: list[RequestRecord] = []
        self.faults = Faults()
        self.climkit = ClimkitCloud(now=self._now, faults=self.faults)
        self.locus = LocusCloud(now=self._now, faults=self.faults)
        self.energydata = EnergydataCloud(now=self._now, faults=self.faults)
        self.copper = CopperCloud(now=self._now, faults=self.faults)
        self.flexmeasures = FlexMeasuresCloud(now=self._now, faults=self.faults)
        self._clouds: dict[str, Cloud] = {
            self.climkit.name: self.climkit,
            self.locus.name: self.locus,
            self.energydata.name: self.energydata,
            self.copper.name: self.copper,
            self.flexmeasures.name: self.flexmeasures,
        }
        self._root_clouds: list[RootRoutes] = [self.locus, self.energydata, self.copper]
        self._runner: web.AppRunner | None = None
        self._base: str | None = None

    def _now(self) -> datetime:
        """Read ``self.now`` at call time, so reassigning it later reaches the clouds."""
        return self.now()

    @property
    def base_url(self) -> str:
        """The server's root URL; only valid while started."""
        if self._base is None:
            raise RuntimeError("the simulator is not running")
        return self._base

    def url(self, cloud: str) -> str:
        """Return the API root of ``cloud`` (what a user would enter as the API URL)."""
        return f"{self.base_url}{self._clouds[cloud].prefix}"

    def log_for(self, cloud: str) -> list[RequestRecord]:
        """Return the logged requests of one cloud, oldest first."""
        return [record for record in self.log if record.cloud == cloud]

    def clear_log(self) -> None:
        """Forget every logged request (the list object stays the same)."""
        self.log.clear()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self.faults.rearm()
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        self._base = f"http://{shown_host}:{bound_port}"
        return self._base

    async def stop(self) -> None:
        """Stop serving; requests hanging in a ``timeout`` fault are answered first."""
        if self._runner is None:
            return
        self.faults.release_sleepers()
        runner, self._runner, self._base = self._runner, None, None
        await runner.cleanup()

    def _build_app(self) -> web.Application:
        """Build the root application: logging middleware plus one sub-app per cloud."""
        app = web.Application(middlewares=[self._middleware])
        for cloud in self._clouds.values():
            app.add_subapp(cloud.prefix, cloud.build_app())
        for root_cloud in self._root_clouds:
            root_cloud.add_root_routes(app)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """Log every request with its final status and turn HTTP errors into JSON."""
        request[ARRIVAL] = time.monotonic()
        wall = self.now()
        try:
            response = await handler(request)
        except web.HTTPException as err:
            response = web.json_response(
                {"message": err.reason}, status=err.status, headers=_allow_header(err)
            )
        except Exception:
            _LOGGER.exception(
                "simulator handler failed for %s %s", request.method, request.path
            )
            response = web.json_response(
                {"message": "Internal Server Error"}, status=500
            )
        await self._record(request, wall, response.status)
        return response

    async def _record(self, request: web.Request, wall: datetime, status: int) -> None:
        """Append the request to the log, attributed to its cloud and account."""
        cloud, path = self._split_path(request.path)
        self.log.append(
            RequestRecord(
                at=request[ARRIVAL],
                wall=wall,
                cloud=cloud,
                method=request.method,
                path=path,
                query=_mask(dict(request.query)),
                body=_mask(await _read_body(request)),
                account=request.get(ACCOUNT),
                status=status,
            )
        )

    def _split_path(self, path: str) -> tuple[str | None, str]:
        """Return (cloud name, path below its prefix), or (None, path) when unrouted.

        A cloud's root paths (Locus's /oauth/token) are logged as they are.
        """
        for root_cloud in self._root_clouds:
            if path in root_cloud.root_paths or any(
                root.endswith("/") and path.startswith(root)
                for root in root_cloud.root_paths
            ):
                return root_cloud.name, path
        for cloud in self._clouds.values():
            if path == cloud.prefix or path.startswith(f"{cloud.prefix}/"):
                return cloud.name, path[len(cloud.prefix) :] or "/"
        return None, path


def _mask(value: Any) -> Any:
    """Mask every secret of a logged body or query, the cloud-specific ones included."""
    masked = mask_secrets(value)
    if isinstance(masked, dict):
        return {
            key: MASK if key in EXTRA_SECRET_KEYS else _mask(item)
            for key, item in masked.items()
        }
    if isinstance(masked, list):
        return [_mask(item) for item in masked]
    return masked


def _allow_header(err: web.HTTPException) -> dict[str, str]:
    """Keep the ``Allow`` header of a 405 when re-rendering it as JSON."""
    allow = err.headers.get("Allow")
    return {"Allow": allow} if allow else {}


async def _read_body(request: web.Request) -> Any:
    """Parse the request body for the log: JSON or form fields, else None."""
    if not request.body_exists:
        return None
    try:
        raw = await request.read()
    except OSError:
        return None
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return None
