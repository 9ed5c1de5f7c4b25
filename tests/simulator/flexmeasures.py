"""The simulated FlexMeasures server (API v3_0, the sunset v1.1, schedules).

Served below ``/flexmeasures``: a client's server URL is
``http://127.0.0.1:PORT/flexmeasures`` and it appends ``/api/…``. It answers like
a real FlexMeasures 1.0.1 (shared/providers/FLEXMEASURES-REAL.md and its
transcript; the schedule and trigger-limit shapes were checked against the real
server): sorted, indented JSON with a ``status`` key; ``FlexMeasures-Version``,
``API-Version`` (under /api/v3_0) and ``X-RateLimit-*`` plus ``Retry-After`` on
every rate-limited answer; HTML 404/405 pages for unknown routes and methods.
Data, units, beliefs and the scheduler live in flexmeasures_data.py.

Decisions where the real server could not be observed (tests may rely on them):

* Order of checks: route (HTML 404/405) → token (optional) → rate limits → 401
  when the route needs a user → fault → endpoint. The 500/min limit counts per
  user, or per client address without a valid token, in fixed windows of the
  simulator clock; /health is exempt. The trigger limit (10 per 5 minutes per
  user) counts only accepted (202) triggers, as the real one does, and both
  limits count a trigger. ``enforce_rate_limits`` False (tests' fast mode)
  keeps the headers but never answers 429.
* Ingestion worker (``ingestion_worker``): a POST answers 202 + job; the job
  runs when ``ingestion_delay`` has passed on the simulator clock or after
  ``ingestion_polls`` polls of /jobs answered 202, whichever comes first.
* Schedules: the plan is computed at trigger time (prices as known then). The
  first ``schedule_polls`` polls (schedule or job) answer 202 QUEUED, then
  STARTED; the next one finds it done. A failed plan (prices missing, no price,
  infeasible targets) answers 400 UNKNOWN_SCHEDULE. Schedules are not written
  into the sensor's data. Numbers without a unit in the flex-model are MWh
  (soc, unless ``soc-unit``) and MW (capacities), as in FlexMeasures.
* ``job-url`` and ``results-url`` are paths below the server root (here: below
  ``/flexmeasures``), as the real server gives them below its own root.
* v1.1 (``api_versions`` containing "v1_1", an old server): getService,
  getConnection, getMeterData (query or JSON body) and postMeterData. A
  connection is a power sensor: ``ea1.2027-01.localhost:<user id>:<sensor id>``;
  values are MW, consumption positive (USEF), whatever the sensor stores.
"""

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import math
import re
import secrets
from typing import Any, Literal
import uuid

from aiohttp import web
from multidict import CIMultiDict

from .clock import Now
from .faults import FaultKind, Faults
from .flexmeasures_data import (
    ACCOUNTS,
    ASSET_TYPES,
    ASSETS,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    EA_AUTHORITY,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    USERS,
    BeliefStore,
    Duration,
    FieldError,
    Infeasible,
    Ingested,
    Plan,
    Replacement,
    SimAsset,
    SimSensor,
    SimUser,
    base_value,
    floor_to,
    format_duration,
    from_sensor_unit,
    parse_aware,
    parse_duration,
    parse_fixed_duration,
    plan_storage,
    resample_posted,
    resolution_error,
    unit_error,
)
from .flexmeasures_http import (
    DATA_FIELDS,
    FLEX_CONTEXT_FIELDS,
    FLEX_MODEL_FIELDS,
    INVALID_SENDER,
    MAX_BODY_BYTES,
    POST_FIELDS,
    POST_TYPES,
    PREFIX,
    PROCESSED,
    REPLACEMENT,
    SERVICES,
    SUNSET,
    TRIGGER_FIELDS,
    UNAUTHORIZED,
    VERSION,
    Answer,
    Headers,
    Kind,
    asset_type,
    damage,
    data_error,
    html,
    ingestion_answer,
    iso,
    json_body,
    limit_headers,
    number,
    page,
    parse_fields,
    storage_model,
    too_many,
    unprocessable,
    v1_error,
)
from .ratelimit import FixedWindowLimiter
from .requestlog import ACCOUNT

type Handler = Callable[
    [web.Request, SimUser | None, dict[str, str]], Awaitable[Answer]
]

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "OTHER_EMAIL",
    "OTHER_PASSWORD",
    "PREFIX",
    "FlexMeasuresCloud",
]


@dataclass(frozen=True, slots=True)
class _Route:
    """One endpoint: method, path pattern below the prefix, handler, access kind."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    kind: Kind
    trigger: bool = False


@dataclass(slots=True)
class _Job:
    """An RQ job as the API shows it (ingestion or scheduling)."""

    id: str
    origin: Literal["ingestion", "scheduling"]
    enqueued: datetime
    sensor_id: int
    status: str = "QUEUED"
    polls: int = 0
    started: datetime | None = None
    ended: datetime | None = None
    result: Any = None
    error: str | None = None
    run: Callable[[], None] | None = None
    plan: Plan | None = None


@dataclass(eq=False)
class FlexMeasuresCloud:
    """A FlexMeasures server: accounts, tokens, data, jobs, schedules, knobs, truth."""

    now: Now
    faults: Faults
    name: str = "flexmeasures"
    prefix: str = PREFIX
    flexmeasures_version: str = VERSION
    api_versions: tuple[str, ...] = ("v3_0",)
    token_max_age: float = 21600.0
    always_paged_assets: bool = False
    ingestion_worker: bool = False
    ingestion_delay: timedelta = timedelta(seconds=1)
    ingestion_polls: int = 1
    schedule_polls: int = 1
    planning_horizon: timedelta = timedelta(days=2)
    rate_limit: int = 500
    rate_window: timedelta = timedelta(minutes=1)
    trigger_limit: int = 10
    trigger_window: timedelta = timedelta(minutes=5)
    enforce_rate_limits: bool = True
    store: BeliefStore = field(default_factory=BeliefStore)
    users: dict[str, SimUser] = field(
        default_factory=lambda: {user.email: user for user in USERS}
    )
    _tokens: dict[str, tuple[SimUser, datetime]] = field(default_factory=dict)
    _jobs: dict[str, _Job] = field(default_factory=dict)
    _requests: FixedWindowLimiter = field(default_factory=FixedWindowLimiter)
    _triggers: FixedWindowLimiter = field(default_factory=FixedWindowLimiter)
    _routes: list[_Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Build the routing table."""
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ knobs

    def revoke_tokens(self, email: str | None = None) -> None:
        """Reject every token issued so far (of one user, or of all)."""
        for token, (user, _) in list(self._tokens.items()):
            if email is None or user.email == email:
                del self._tokens[token]

    def reset_rate_limits(self) -> None:
        """Close every rate-limit window (a frozen clock never closes them)."""
        self._requests.reset()
        self._triggers.reset()

    def issue_token(self, email: str = DEMO_EMAIL) -> str:
        """Return a fresh token of a user, as requestAuthToken would."""
        user = self.users[email]
        payload = json.dumps(
            {
                "ver": "5",
                "uid": secrets.token_hex(16),
                "fs_paa": self.now().timestamp(),
                "exp": 0,
            },
            separators=(",", ":"),
        )
        head = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
        token = f"{head}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(20)}"
        self._tokens[token] = (user, self.now())
        return token

    # ------------------------------------------------------------------ ground truth

    def sensor(self, sensor_id: int) -> SimSensor:
        """Return a sensor by id (KeyError when unknown)."""
        return self.store.sensors[sensor_id]

    def asset(self, asset_id: int) -> SimAsset:
        """Return an asset by id (KeyError when unknown)."""
        return next(asset for asset in ASSETS if asset.id == asset_id)

    def assets_of(self, account_id: int) -> list[SimAsset]:
        """Return the account's assets in API order (by id, children included)."""
        return [asset for asset in ASSETS if asset.account_id == account_id]

    def sensors_of(self, account_id: int) -> list[SimSensor]:
        """Return the account's sensors in API order (by id)."""
        owned = {asset.id for asset in self.assets_of(account_id)}
        return [s for s in self.store.sensors.values() if s.asset_id in owned]

    def truth_values(
        self, sensor_id: int, start: datetime, end: datetime
    ) -> dict[datetime, float | None]:
        """UTC event start -> value now served at native resolution, in [start, end)."""
        sensor = self.sensor(sensor_id)
        at = floor_to(start, sensor.resolution)
        at = at if at >= start else at + sensor.resolution
        values: dict[datetime, float | None] = {}
        while at < end:
            values[at] = self.store.value(sensor, at, self.now())
            at += sensor.resolution
        return values

    def truth_base(self, sensor_id: int, at: datetime) -> float | None:
        """Return the demo value of an event (ignores posts and availability)."""
        return base_value(self.sensor(sensor_id), at.astimezone(UTC))

    def truth_posted(self, sensor_id: int) -> dict[datetime, float]:
        """UTC event start -> the newest posted value (sensor unit)."""
        return {
            at: max(beliefs, key=lambda b: b.recorded).value
            for at, beliefs in sorted(self.store.posted.get(sensor_id, {}).items())
        }

    def truth_schedule(self, schedule_id: str) -> Plan:
        """Return the plan computed for a schedule id (KeyError when none)."""
        plan = self._jobs[schedule_id].plan
        if plan is None:
            raise KeyError(schedule_id)
        return plan

    def truth_jobs(self) -> dict[str, str]:
        """Job id -> status (QUEUED, STARTED, FINISHED, FAILED)."""
        return {job.id: job.status for job in self._jobs.values()}

    # ------------------------------------------------------------------ HTTP plumbing

    def build_app(self) -> web.Application:
        """Return the sub-application: one catch-all handler dispatching by table."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def _build_routes(self) -> list[_Route]:
        v3 = "/api/v3_0"
        table: list[tuple[str, str, Handler, Kind]] = [
            ("GET", r"/api/?", self._versions, "public"),
            ("POST", r"/api/requestAuthToken", self._request_token, "token"),
            ("GET", rf"{v3}/?", self._services, "public"),
            ("GET", rf"{v3}/health/ready", self._health, "health"),
            ("GET", rf"{v3}/assets", self._assets, "auth"),
            ("GET", rf"{v3}/assets/(?P<id>[^/]+)", self._asset_one, "auth"),
            ("GET", rf"{v3}/assets/(?P<id>[^/]+)/sensors", self._asset_sensors, "auth"),
            ("GET", rf"{v3}/sensors", self._sensors, "auth"),
            ("GET", rf"{v3}/sensors/(?P<id>[^/]+)", self._sensor_one, "auth"),
            ("GET", rf"{v3}/sensors/(?P<id>[^/]+)/data", self._get_data, "auth"),
            ("POST", rf"{v3}/sensors/(?P<id>[^/]+)/data", self._post_data, "auth"),
            (
                "GET",
                rf"{v3}/sensors/(?P<id>[^/]+)/schedules/(?P<uuid>[^/]+)",
                self._get_schedule,
                "auth",
            ),
            ("GET", rf"{v3}/jobs/(?P<uuid>[^/]+)", self._get_job, "auth"),
            ("GET", r"/api/v1_1/getService", self._v1_service, "public"),
            ("GET", r"/api/v1_1/getConnection", self._v1_connections, "auth"),
            ("GET", r"/api/v1_1/getMeterData", self._v1_get_meter_data, "auth"),
            ("POST", r"/api/v1_1/postMeterData", self._v1_post_meter_data, "auth"),
        ]
        routes = [
            _Route(method, re.compile(f"^{path}$"), handler, kind)
            for method, path, handler, kind in table
        ]
        routes.append(
            _Route(
                "POST",
                re.compile(rf"^{v3}/sensors/(?P<id>[^/]+)/schedules/trigger$"),
                self._trigger,
                "auth",
                trigger=True,
            )
        )
        for version, (_, endpoints) in SUNSET.items():
            routes.extend(
                _Route(
                    method,
                    re.compile(rf"^/api/(?P<version>{version})/{name}$"),
                    self._sunset,
                    "optional",
                )
                for method, name in endpoints
            )
        return routes

    def _served(self, route: _Route, path: str) -> bool:
        """Whether the configured server version offers this route."""
        if path.startswith("/api/v3_0"):
            return "v3_0" in self.api_versions
        if route.handler == self._sunset:
            return not (path.startswith("/api/v1_1/") and "v1_1" in self.api_versions)
        if path.startswith("/api/v1_1/"):
            return "v1_1" in self.api_versions
        return True

    def _match(
        self, method: str, path: str
    ) -> tuple[_Route, dict[str, str]] | tuple[None, list[str]]:
        """Return the route and its path parameters, else (None, methods allowed there)."""
        allowed: list[str] = []
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None or not self._served(route, path):
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        return None, allowed

    def _authenticate(self, request: web.Request) -> SimUser | None:
        """Return the user of a valid raw ``Authorization`` token (or ``?auth_token=``)."""
        token = request.headers.get("Authorization") or request.query.get("auth_token")
        if not token:
            return None
        issued = self._tokens.get(token.strip())
        if issued is None:
            return None
        user, at = issued
        if (self.now() - at).total_seconds() >= self.token_max_age:
            return None
        return user

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route, authenticate, rate-limit, inject faults, answer with the headers."""
        path = request.path[len(self.prefix) :] or "/"
        headers: Headers = CIMultiDict(
            {"FlexMeasures-Version": self.flexmeasures_version}
        )
        if path.startswith("/api/v3_0") and "v3_0" in self.api_versions:
            headers["API-Version"] = "v3_0"
        self._run_due_jobs()
        route, found = self._match(request.method, path)
        if route is None:
            assert isinstance(found, list)
            if found:
                headers["Allow"] = ", ".join(sorted({*found, "OPTIONS"}))
                return html(405, headers)
            return html(404, headers)
        assert isinstance(found, dict)
        user = self._authenticate(request)
        if user is not None:
            request[ACCOUNT] = user.email
        if route.kind != "health":
            key = f"user:{user.id}" if user else f"ip:{request.remote}"
            refusal = self._count(key, route.trigger, headers)
            if refusal is not None:
                return self._render(refusal, headers)
        if route.kind == "auth" and user is None:
            body = dict(UNAUTHORIZED)
            if path.startswith("/api/v1_1/"):
                body["result"] = "Rejected"
            return self._render((401, body), headers)
        kind = self.faults.take(self.name, path, is_auth=route.kind == "token")
        if kind is not None and (response := await self._fault(kind, headers)):
            return response
        status, body = await route.handler(request, user, found)
        if kind == "missing_fields":
            body = damage(body)
        if route.trigger and user is not None:
            self._trigger_headers(f"user:{user.id}", headers, counted=status == 202)
        if route.handler == self._sunset:
            self._sunset_headers(found["version"], headers)
        return self._render((status, body), headers)

    def _count(self, key: str, trigger: bool, headers: Headers) -> Answer | None:
        """Count the request in its window; return the 429 when over a limit."""
        now = self.now()
        used, end = self._requests.hit(key, now, self.rate_window)
        limit_headers(headers, self.rate_limit, used, end, now)
        if self.enforce_rate_limits and self.rate_limit > 0 and used > self.rate_limit:
            return too_many(self.rate_limit, self.rate_window)
        if trigger:
            used, end = self._triggers.peek(key, now, self.trigger_window)
            limit_headers(headers, self.trigger_limit, used, end, now)
            if (
                self.enforce_rate_limits
                and self.trigger_limit > 0
                and used >= self.trigger_limit
            ):
                return too_many(self.trigger_limit, self.trigger_window)
        return None

    def _trigger_headers(self, key: str, headers: Headers, *, counted: bool) -> None:
        """Count an accepted trigger and show the trigger limit's numbers."""
        now = self.now()
        if counted:
            used, end = self._triggers.hit(key, now, self.trigger_window)
        else:
            used, end = self._triggers.peek(key, now, self.trigger_window)
        limit_headers(headers, self.trigger_limit, used, end, now)

    def _sunset_headers(self, version: str, headers: Headers) -> None:
        headers["Deprecation"] = "Tue, 13 Dec 2022 23:59:59 GMT"
        headers["Sunset"] = "Sun, 30 Apr 2023 23:59:59 GMT"
        headers.add(
            "Link",
            "<https://flexmeasures.readthedocs.io/en/latest/api/introduction.html"
            '#deprecation-and-sunset>; rel="deprecation"; type="text/html"',
        )
        headers.add(
            "Link",
            f"<https://flexmeasures.readthedocs.io/en/v0.13.0/api/{version}.html>; "
            'rel="sunset"; type="text/html"',
        )

    async def _fault(self, kind: FaultKind, headers: Headers) -> web.Response | None:
        """Answer a request hit by a shared fault, FlexMeasures-shaped where it can be."""
        match kind:
            case "http_500":
                return self._render(
                    (500, {"message": "Internal Server Error", "status": 500}), headers
                )
            case "http_401":
                return self._render((401, dict(UNAUTHORIZED)), headers)
            case "http_429":
                headers["Retry-After"] = "60"
                headers["X-RateLimit-Remaining"] = "0"
                return self._render(
                    too_many(self.rate_limit, self.rate_window), headers
                )
        return await self.faults.respond(kind)

    @staticmethod
    def _render(answer: Answer, headers: Headers) -> web.Response:
        """Sorted, indented JSON as Flask answers it."""
        status, body = answer
        return web.Response(
            text=json.dumps(body, indent=2, sort_keys=True) + "\n",
            status=status,
            content_type="application/json",
            headers=headers,
        )

    # ------------------------------------------------------------------ public

    async def _versions(self, request: web.Request, *_: Any) -> Answer:
        return 200, {
            "flexmeasures_version": self.flexmeasures_version,
            "message": (
                "For these API versions a public endpoint is available, listing its "
                "service. For example: /api/v3_0. An authentication token can be "
                "requested at: /api/requestAuthToken"
            ),
            "status": 200,
            "versions": list(self.api_versions),
        }

    async def _services(self, request: web.Request, *_: Any) -> Answer:
        base = f"{request.url.origin()}{self.prefix}/api/v3_0"
        return 200, {
            "message": PROCESSED,
            "services": [
                {
                    "description": text,
                    "name": f"{method} {path}",
                    "url": f"{base}{path}",
                }
                for method, path, text in SERVICES
            ],
            "status": 200,
        }

    async def _health(self, *_: Any) -> Answer:
        return 200, {"database_sql": True, "status": 200}

    async def _request_token(self, request: web.Request, *_: Any) -> Answer:
        body, broken = await json_body(request)
        if broken:
            return 400, {
                "message": (
                    "The browser (or proxy) sent a request that this server could not "
                    "understand."
                ),
                "status": 400,
            }
        body = body if isinstance(body, dict) else {}
        missing = {
            key: ["Missing data for required field."]
            for key in ("email", "password")
            if not isinstance(body.get(key), str)
        }
        if missing:
            return unprocessable({"json": missing})
        user = self.users.get(body["email"])
        if user is None:
            return 404, {
                "errors": [f"User with email '{body['email']}' does not exist"],
                "status": 404,
            }
        request[ACCOUNT] = user.email
        if not secrets.compare_digest(
            user.password.encode(), body["password"].encode()
        ):
            return 401, {"errors": ["User password does not match."], "status": 401}
        return 200, {
            "auth_token": self.issue_token(user.email),
            "status": 200,
            "user_id": user.id,
        }

    # ------------------------------------------------------------------ assets, sensors

    def _asset_json(self, asset: SimAsset) -> dict[str, Any]:
        children = [child for child in ASSETS if child.parent_id == asset.id]
        return {
            "account_id": asset.account_id,
            "attributes": "{}",
            "child_assets": [
                {
                    "account_id": child.account_id,
                    "generic_asset_type": asset_type(child),
                    "id": child.id,
                    "name": child.name,
                }
                for child in children
            ],
            "description": None,
            "external_id": None,
            "flex_context": "{}",
            "flex_model": "{}",
            "generic_asset_type": asset_type(asset),
            "generic_asset_type_id": ASSET_TYPES[asset.type_name],
            "id": asset.id,
            "latitude": asset.latitude,
            "longitude": asset.longitude,
            "name": asset.name,
            "owner": {"id": asset.account_id, "name": ACCOUNTS[asset.account_id]},
            "parent_asset_id": asset.parent_id,
            "sensors": [
                {"id": s.id, "name": s.name}
                for s in self.store.sensors.values()
                if s.asset_id == asset.id
            ],
            "sensors_to_show": "[]",
            "sensors_to_show_as_kpis": "[]",
        }

    async def _assets(
        self, request: web.Request, user: SimUser | None, _: Any
    ) -> Answer:
        assert user is not None
        rows = [self._asset_json(a) for a in self.assets_of(user.account_id)]
        return page(request, rows, always=self.always_paged_assets)

    def _find_asset(self, raw: str, user: SimUser) -> SimAsset | Answer:
        """Return the asset of a path id, or the answer for an unknown/foreign one."""
        if not raw.isdigit():
            return unprocessable({"path": {"id": ["Not a valid integer."]}})
        asset = next((a for a in ASSETS if a.id == int(raw)), None)
        if asset is None:
            return 404, {"message": f"No asset found with ID {raw}.", "status": 404}
        if asset.account_id != user.account_id:
            return 403, INVALID_SENDER
        return asset

    async def _asset_one(
        self, _: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        found = self._find_asset(path["id"], user)
        if not isinstance(found, SimAsset):
            return found
        return 200, {**self._asset_json(found), "status": 200}

    async def _asset_sensors(
        self, request: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        found = self._find_asset(path["id"], user)
        if not isinstance(found, SimAsset):
            if found[0] == 404:
                return unprocessable({"path": {"id": [found[1]["message"]]}})
            return found
        rows = [
            s.as_json() for s in self.store.sensors.values() if s.asset_id == found.id
        ]
        return page(request, rows, always=True)

    async def _sensors(
        self, request: web.Request, user: SimUser | None, _: Any
    ) -> Answer:
        assert user is not None
        sensors = self.sensors_of(user.account_id)
        raw = request.query.get("asset_id", request.query.get("asset"))
        if raw is not None:
            found = self._find_asset(raw, user)
            if not isinstance(found, SimAsset):
                if found[0] == 404:
                    return unprocessable({"query": {"asset_id": [found[1]["message"]]}})
                return found
            family = {found.id} | {a.id for a in ASSETS if a.parent_id == found.id}
            sensors = [s for s in sensors if s.asset_id in family]
        if unit := request.query.get("unit"):
            sensors = [s for s in sensors if s.unit == unit]
        if term := request.query.get("filter"):
            sensors = [s for s in sensors if term.casefold() in s.name.casefold()]
        return page(request, [s.as_json() for s in sensors], always=False)

    def _find_sensor(self, raw: str, user: SimUser) -> SimSensor | Answer:
        """Return the sensor of a path id, or the /sensors/<id> answer (422/403)."""
        if not raw.isdigit():
            return unprocessable({"path": {"id": ["Not a valid integer."]}})
        sensor = self.store.sensors.get(int(raw))
        if sensor is None:
            return unprocessable({"path": {"id": [f"No sensor found with ID {raw}."]}})
        if sensor not in self.sensors_of(user.account_id):
            return 403, INVALID_SENDER
        return sensor

    async def _sensor_one(
        self, _: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        found = self._find_sensor(path["id"], user)
        if not isinstance(found, SimSensor):
            return found
        return 200, {**found.as_json(), "status": 200}

    def _data_sensor(self, raw: str, user: SimUser) -> SimSensor | Answer:
        """Like _find_sensor, but /data answers 404 for an unknown sensor."""
        found = self._find_sensor(raw, user)
        if isinstance(found, tuple) and raw.isdigit() and found[0] == 422:
            return 404, {"message": f"Sensor {raw} not found", "status": 404}
        return found

    # ------------------------------------------------------------------ data

    async def _get_data(
        self, request: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        sensor = self._data_sensor(path["id"], user)
        if not isinstance(sensor, SimSensor):
            return sensor
        params: dict[str, Any] = dict(request.query)
        body, _ = await json_body(request)
        if isinstance(body, dict):
            for key, value in body.items():
                params.setdefault(key, value)
        errors: dict[str, list[str]] = {}
        for key in params:
            if key.replace("_", "-") not in DATA_FIELDS:
                errors[key.replace("_", "-")] = ["Unknown field."]
        fields = parse_fields(params, errors, ("start", "duration", "unit"))
        if errors:
            return data_error(errors)
        if problem := unit_error(sensor, params["unit"]):
            return data_error({"_schema": [problem]})
        start: datetime = fields["start"]
        duration: Duration = fields["duration"]
        resolution: timedelta = fields.get("resolution") or sensor.resolution
        values: list[float | None] = []
        if not duration.negative:
            now = self.now()
            stored = self.store.read(
                sensor, start, duration.end(start), resolution, now, fields.get("prior")
            )
            values = [
                None
                if v is None
                else from_sensor_unit(sensor, v, params["unit"], resolution)
                for v in stored
            ]
        return 200, {
            "duration": duration.echo(),
            "message": PROCESSED,
            "resolution": format_duration(resolution),
            "start": start.isoformat(),
            "status": "PROCESSED",
            "unit": params["unit"],
            "values": values,
        }

    async def _post_data(
        self, request: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        if (request.content_length or 0) > MAX_BODY_BYTES:
            await request.content.read()
            return 413, {
                "message": f"Request body exceeds the configured limit of {MAX_BODY_BYTES} bytes.",
                "result": "Rejected",
                "status": "PAYLOAD_TOO_LARGE",
            }
        sensor = self._data_sensor(path["id"], user)
        if not isinstance(sensor, SimSensor):
            return sensor
        body, _ = await json_body(request)
        body = body if isinstance(body, dict) else {}
        errors = {key: ["Unknown field."] for key in body if key not in POST_FIELDS}
        fields = parse_fields(body, errors, ("start", "duration", "unit"))
        if "type" in body and body["type"] not in POST_TYPES:
            errors["type"] = [f"Must be one of: {', '.join(POST_TYPES)}."]
        if errors:
            return data_error(errors)
        raw_values = body.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            return 500, {"message": "'values'", "status": 500}
        try:
            values = [number(value) for value in raw_values]
        except FieldError as err:
            return data_error({"values": [str(err)]})
        if problem := unit_error(sensor, body["unit"]):
            return data_error({"_schema": [problem]})
        start: datetime = fields["start"]
        step = (fields["duration"].end(start) - start) / len(values)
        if problem := resolution_error(step, sensor.resolution):
            return data_error({"_schema": [problem]})
        now = self.now()
        if (
            body.get("type") == "PostMeterDataRequest"
            and start + step * len(values) > now
        ):
            return 500, {
                "message": "{'_schema': ['Meter data must lie in the past.']}",
                "status": 500,
            }
        events = resample_posted(sensor, values, start, step, body["unit"])
        recorded = fields.get("prior") or now.replace(microsecond=0)
        if not self.ingestion_worker:
            try:
                outcome = self.store.store(
                    sensor, events, recorded.astimezone(UTC), now
                )
            except Replacement:
                return 403, REPLACEMENT
            return ingestion_answer(outcome)
        job = self._new_job("ingestion", sensor.id)
        job.run = lambda: self._ingest_job(
            job, sensor, events, recorded.astimezone(UTC)
        )
        return 202, {
            "job": job.id,
            "job-url": f"/api/v3_0/jobs/{job.id}",
            "message": "Sensor data has been accepted for processing.",
            "status": "ACCEPTED",
        }

    # ------------------------------------------------------------------ jobs

    def _new_job(
        self, origin: Literal["ingestion", "scheduling"], sensor_id: int
    ) -> _Job:
        job = _Job(str(uuid.uuid4()), origin, self.now(), sensor_id)
        self._jobs[job.id] = job
        return job

    def _ingest_job(
        self,
        job: _Job,
        sensor: SimSensor,
        events: dict[datetime, float],
        recorded: datetime,
    ) -> None:
        now = self.now()
        job.started = job.ended = now
        try:
            outcome = self.store.store(sensor, events, recorded, now)
        except Replacement:
            job.status, job.error = "FAILED", "InvalidReplacement"
            return
        job.status, job.result = (
            "FINISHED",
            "success" if outcome.new else outcome.status,
        )

    def _run_due_jobs(self) -> None:
        """Run ingestion jobs whose delay has passed on the simulator clock."""
        now = self.now()
        for job in self._jobs.values():
            if (
                job.status == "QUEUED"
                and job.run
                and now >= job.enqueued + self.ingestion_delay
            ):
                job.run()

    def _poll(self, job: _Job) -> None:
        """Count a poll; run or reveal the job once enough polls were answered 202."""
        job.polls += 1
        if job.origin == "ingestion":
            if job.status == "QUEUED" and job.run and job.polls > self.ingestion_polls:
                job.run()
            return
        if job.status in ("QUEUED", "STARTED"):
            if job.polls > self.schedule_polls:
                job.ended = self.now()
                job.status = "FAILED" if job.error else "FINISHED"
                job.result = None if job.error else True
            elif job.polls > 1:
                job.status, job.started = "STARTED", job.started or self.now()

    async def _get_job(
        self, _: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        job = self._jobs.get(path["uuid"])
        if job is None:
            return 404, {"message": f"Job {path['uuid']} not found.", "status": "ERROR"}
        self._poll(job)
        queue = job.origin.capitalize()
        message = {
            "QUEUED": f"{queue} job waiting to be processed.",
            "STARTED": f"{queue} job in progress.",
            "FINISHED": f"{queue} job has finished.",
            "FAILED": f"{queue} job failed with {job.error}.",
        }[job.status]
        func = (
            "flexmeasures.data.services.data_ingestion.add_beliefs_to_db_and_enqueue_forecasting_jobs"
            if job.origin == "ingestion"
            else "flexmeasures.data.services.scheduling.make_schedule"
        )
        failed = job.status == "FAILED"
        trace = (
            f'Traceback (most recent call last):\n  File "{func}"\n{job.error}\n'
            if failed
            else None
        )
        body: dict[str, Any] = {
            "message": message,
            "origin": job.origin,
            "status": job.status,
        }
        for name, value in (
            ("ended_at", iso(job.ended)),
            ("enqueued_at", iso(job.enqueued)),
            ("exc_info", trace),
            ("func_name", func),
            ("result", job.result),
            ("started_at", iso(job.started)),
        ):
            body[name] = body[name.replace("_", "-")] = value
        status = {"FINISHED": 200, "FAILED": 422}.get(job.status, 202)
        return status, body

    # ------------------------------------------------------------------ schedules

    async def _trigger(
        self, request: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        sensor = self._find_sensor(path["id"], user)
        if not isinstance(sensor, SimSensor):
            return sensor
        body, _ = await json_body(request)
        body = body if isinstance(body, dict) else {}
        errors = {key: ["Unknown field."] for key in body if key not in TRIGGER_FIELDS}
        fields = parse_fields(body, errors, ("start",))
        flex_model = body.get("flex-model", {})
        flex_context = body.get("flex-context", {})
        for name, given, known in (
            ("flex-model", flex_model, FLEX_MODEL_FIELDS),
            ("flex-context", flex_context, FLEX_CONTEXT_FIELDS),
        ):
            if not isinstance(given, dict):
                errors[name] = ["Not a valid mapping type."]
            else:
                errors.update({k: ["Unknown field."] for k in given if k not in known})
        if errors:
            return unprocessable({"json": errors})
        start = floor_to(fields["start"], sensor.resolution)
        duration: Duration = fields.get("duration") or Duration(
            0, self.planning_horizon
        )
        horizon = min(
            duration.end(fields["start"]) - fields["start"], self.planning_horizon
        )
        steps = max(1, horizon // sensor.resolution)
        try:
            model = storage_model(flex_model, start, sensor.resolution, steps)
        except FieldError as err:
            field_name, _, message = str(err).partition(": ")
            return unprocessable({"json": {field_name: [message]}})
        prices: list[list[float] | None] = []
        for key in ("consumption-price", "production-price"):
            given = flex_context.get(key) or flex_context.get(f"{key}-sensor")
            if isinstance(given, int):
                given = {"sensor": given}
            if isinstance(given, dict):
                price_sensor = self.store.sensors.get(given.get("sensor", -1))
                if price_sensor is None:
                    return unprocessable(
                        [f"No sensor found with ID {given.get('sensor')}."]
                    )
                prices.append(
                    self._prices(price_sensor, start, sensor.resolution, steps)
                )
            else:
                prices.append(None)
        job = self._new_job("scheduling", sensor.id)
        consumption = prices[0]
        production = prices[1] if prices[1] is not None else consumption
        if (
            "consumption-price" not in flex_context
            and "consumption-price-sensor" not in flex_context
        ):
            job.error = (
                "ValueError: No consumption price was given in the flex-context."
            )
        elif consumption is None or production is None:
            job.error = "ValueError: Prices unknown for planning window."
        else:
            try:
                job.plan = plan_storage(
                    start, sensor.resolution, consumption, production, model
                )
            except Infeasible as err:
                job.error = f"Infeasible: {err}"
        results = f"/api/v3_0/sensors/{sensor.id}/schedules/{job.id}"
        return 202, {
            "job": job.id,
            "job-url": f"/api/v3_0/jobs/{job.id}",
            "message": "Request has been accepted for processing.",
            "results-url": results,
            "schedule": job.id,
            "status": "ACCEPTED",
        }

    def _prices(
        self, sensor: SimSensor, start: datetime, resolution: timedelta, steps: int
    ) -> list[float] | None:
        """Prices in EUR/MWh per step, or None when one is unknown.

        Read at the price sensor's own resolution from its grid, each step taking
        the price in effect (as FlexMeasures does): a schedule may start at a
        quarter past while prices are hourly.
        """
        own = sensor.resolution
        first = floor_to(start, own)
        end = start + resolution * steps
        read = self.store.read(
            sensor, first, floor_to(end - resolution, own) + own, own, self.now()
        )
        if sensor.unit not in ("EUR/MWh", "EUR/kWh"):
            return None
        prices: list[float] = []
        for step in range(steps):
            value = read[(start + step * resolution - first) // own]
            if value is None:
                return None
            prices.append(from_sensor_unit(sensor, value, "EUR/MWh", own))
        return prices

    async def _get_schedule(
        self, request: web.Request, user: SimUser | None, path: dict[str, str]
    ) -> Answer:
        assert user is not None
        sensor = self._find_sensor(path["id"], user)
        if not isinstance(sensor, SimSensor):
            if sensor[0] == 422:
                return unprocessable(sensor[1]["message"]["path"])
            return sensor
        job = self._jobs.get(path["uuid"])
        if job is None or job.origin != "scheduling" or job.sensor_id != sensor.id:
            return v1_error(
                400,
                "UNRECOGNIZED_UDI_EVENT",
                f"The requested UDI event (id = {path['uuid']}, type = job) is not known.",
            )
        self._poll(job)
        used = " was used." if job.status == "QUEUED" else " StorageScheduler was used."
        if job.status == "QUEUED":
            return 202, {
                "message": f"Scheduling job waiting to be processed. {used}",
                "status": "QUEUED",
            }
        if job.status == "STARTED":
            return 202, {
                "message": f"Scheduling job in progress.{used}",
                "status": "STARTED",
            }
        if job.status == "FAILED" or job.plan is None:
            return v1_error(
                400,
                "UNKNOWN_SCHEDULE",
                f"Scheduling job failed with {job.error}.{used}",
            )
        plan = job.plan
        unit = request.query.get("unit", sensor.unit)
        if problem := unit_error(sensor, unit):
            return unprocessable({"query": {"unit": [problem]}})
        count = len(plan.power_kw)
        if "duration" in request.query:
            try:
                wanted = parse_fixed_duration(request.query["duration"])
            except FieldError as err:
                return unprocessable({"query": {"duration": [str(err)]}})
            count = min(count, max(1, math.ceil(wanted / plan.resolution)))
        return 200, {
            "duration": format_duration(plan.resolution * count),
            "message": f"{PROCESSED}{used}",
            "scheduler_info": {"scheduler": "StorageScheduler"},
            "start": plan.start.isoformat(),
            "status": "PROCESSED",
            "unit": unit,
            "values": [
                from_sensor_unit(sensor, v, unit, plan.resolution)
                for v in plan.power_kw[:count]
            ],
        }

    # ------------------------------------------------------------------ sunset and v1.1

    async def _sunset(
        self, _: web.Request, __: SimUser | None, path: dict[str, str]
    ) -> Answer:
        number = SUNSET[path["version"]][0]
        return 410, {
            "message": (
                f"API version {number} has been sunset. Please upgrade to API version 3.0. "
                f"See https://flexmeasures.readthedocs.io/en/v0.13.0/api/{path['version']}.html "
                "for more information."
            ),
            "status": 410,
        }

    def _connections(self, user: SimUser) -> list[SimSensor]:
        """v1.1 connections: the account's power sensors, newest first."""
        return [
            s
            for s in reversed(self.sensors_of(user.account_id))
            if unit_error(s, "MW") is None and s.unit != "kWh"
        ]

    def _connection_address(self, user: SimUser, sensor: SimSensor) -> str:
        return f"{EA_AUTHORITY}:{user.id}:{sensor.id}"

    async def _v1_service(self, *_: Any) -> Answer:
        return 200, {
            "message": PROCESSED,
            "services": [
                {
                    "access": ["Prosumer"],
                    "description": "Retrieve entity addresses of connections",
                    "name": "getConnection",
                },
                {
                    "access": ["Prosumer"],
                    "description": "Download meter data from the platform",
                    "name": "getMeterData",
                },
                {
                    "access": ["Prosumer"],
                    "description": "Upload meter data to the platform",
                    "name": "postMeterData",
                },
            ],
            "status": 200,
            "type": "GetServiceResponse",
            "version": "1.1",
        }

    async def _v1_connections(
        self, _: web.Request, user: SimUser | None, __: Any
    ) -> Answer:
        assert user is not None
        sensors = self._connections(user)
        return 200, {
            "connections": [self._connection_address(user, s) for s in sensors],
            "message": PROCESSED,
            "names": [s.name for s in sensors],
            "status": "PROCESSED",
            "type": "GetConnectionResponse",
        }

    def _v1_sensor(self, user: SimUser, address: Any) -> SimSensor | Answer:
        """Return the power sensor of a v1.1 entity address, or the v1.1 error."""
        match = re.fullmatch(r"ea1\.\d{4}-\d\d\.[^:]+:(\d+):(\d+)", str(address))
        if match is None:
            return v1_error(
                400,
                "INVALID_DOMAIN",
                "Connections, sensors and markets should be identified using the EA1 "
                "addressing scheme recommended by USEF. For example: "
                "'ea1.2018-06.io.flexmeasures:<owner-id>:<asset-id>'",
            )
        sensor = self.store.sensors.get(int(match.group(2)))
        if (
            sensor is None
            or unit_error(sensor, "MW") is not None
            or sensor.unit == "kWh"
        ):
            return v1_error(
                400,
                "UNRECOGNIZED_CONNECTION_GROUP",
                "One or more connections in your request were not found in your account.",
            )
        if sensor not in self.sensors_of(user.account_id):
            return v1_error(
                403,
                "INVALID_SENDER",
                "You don't have access to one or more of these connections.",
            )
        return sensor

    def _v1_common(
        self, params: dict[str, Any], message_type: str
    ) -> dict[str, Any] | Answer:
        """Check type, unit, start and duration of a v1.1 message."""
        if params.get("type") != message_type:
            return v1_error(
                400,
                "INVALID_MESSAGE_TYPE",
                f"Request message should specify type '{message_type}'.",
            )
        for key in ("start", "duration", "unit"):
            if key not in params:
                return v1_error(
                    400, "REQUIRED_INFO_MISSING", f"Required info missing: {key}"
                )
        if params["unit"] != "MW":
            return v1_error(400, "INVALID_UNIT", "Data should be given in MW.")
        try:
            start = parse_aware(params["start"])
        except FieldError:
            return v1_error(
                400,
                "INVALID_TIMEZONE",
                "Timezone information required, e.g. 2015-01-01T00:00:00+01:00.",
            )
        try:
            duration = parse_duration(params["duration"])
            resolution = (
                parse_fixed_duration(params["resolution"])
                if "resolution" in params
                else None
            )
        except FieldError as err:
            return v1_error(400, "INVALID_PERIOD", str(err))
        return {"start": start, "end": duration.end(start), "resolution": resolution}

    async def _v1_get_meter_data(
        self, request: web.Request, user: SimUser | None, _: Any
    ) -> Answer:
        assert user is not None
        params: dict[str, Any] = dict(request.query)
        body, _ = await json_body(request)
        if isinstance(body, dict):
            params = {**body, **params}
        checked = self._v1_common(params, "GetMeterDataRequest")
        if isinstance(checked, tuple):
            return checked
        address = params.get("connection") or (params.get("connections") or [None])[0]
        sensor = self._v1_sensor(user, address)
        if not isinstance(sensor, SimSensor):
            return sensor
        resolution = checked["resolution"] or sensor.resolution
        sign = 1 if sensor.consumption_is_positive else -1
        stored = self.store.read(
            sensor, checked["start"], checked["end"], resolution, self.now()
        )
        return 200, {
            "connection": address,
            "duration": params["duration"],
            "message": PROCESSED,
            "resolution": format_duration(resolution),
            "start": params["start"],
            "status": "PROCESSED",
            "type": "GetMeterDataResponse",
            "unit": "MW",
            "values": [
                None
                if v is None
                else sign * from_sensor_unit(sensor, v, "MW", resolution)
                for v in stored
            ],
        }

    async def _v1_post_meter_data(
        self, request: web.Request, user: SimUser | None, _: Any
    ) -> Answer:
        assert user is not None
        body, _ = await json_body(request)
        body = body if isinstance(body, dict) else {}
        checked = self._v1_common(body, "PostMeterDataRequest")
        if isinstance(checked, tuple):
            return checked
        groups = body.get("groups")
        if groups is None and "values" in body:
            connections = body.get("connections") or [body.get("connection")]
            groups = [{"connections": connections, "values": body["values"]}]
        if not isinstance(groups, list) or not groups:
            return v1_error(
                400, "REQUIRED_INFO_MISSING", "Required info missing: groups"
            )
        work: list[tuple[SimSensor, dict[datetime, float]]] = []
        for group in groups:
            values = group.get("values") if isinstance(group, dict) else None
            if not isinstance(values, list) or not values:
                return v1_error(
                    400, "REQUIRED_INFO_MISSING", "Required info missing: values"
                )
            try:
                numbers = [number(v) for v in values]
            except FieldError:
                return v1_error(400, "INVALID_MESSAGE", "Values should be numbers.")
            step = (checked["end"] - checked["start"]) / len(numbers)
            for address in group.get("connections") or []:
                sensor = self._v1_sensor(user, address)
                if not isinstance(sensor, SimSensor):
                    return sensor
                if problem := resolution_error(step, sensor.resolution):
                    return v1_error(400, "INVALID_RESOLUTION", problem)
                sign = 1 if sensor.consumption_is_positive else -1
                signed = [None if v is None else sign * v for v in numbers]
                work.append(
                    (
                        sensor,
                        resample_posted(sensor, signed, checked["start"], step, "MW"),
                    )
                )
        now = self.now()
        recorded = now.replace(microsecond=0)
        outcomes: list[Ingested] = []
        try:
            for sensor, events in work:
                outcomes.append(self.store.store(sensor, events, recorded, now))
        except Replacement:
            return 403, {**REPLACEMENT, "type": "PostMeterDataResponse"}
        answer = ingestion_answer(
            Ingested(sum(o.new for o in outcomes), sum(o.unchanged for o in outcomes))
        )
        return answer[0], {**answer[1], "type": "PostMeterDataResponse"}
