"""FlexMeasures in the simulator, part 2: answers, messages and request parsing.

The shapes every endpoint shares (sorted JSON bodies, error bodies, paging, the
rate-limit headers, HTML error pages) and the parsing of request fields and
flex-models, kept apart from the routes in flexmeasures.py.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import json
import math
import re
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict

from .faults import drop_required_fields
from .flexmeasures_data import (
    ASSET_TYPES,
    FieldError,
    Ingested,
    SimAsset,
    StorageModel,
    parse_aware,
    parse_duration,
    parse_fixed_duration,
)

PREFIX = "/flexmeasures"
VERSION = "1.0.1"
MAX_BODY_BYTES = 3250585.6
PROCESSED = "Request has been processed."
IDENTITY_KEYS = ("id", "auth_token", "start", "values", "schedule", "job", "user_id")

UNAUTHORIZED = {
    "message": "You could not be properly authenticated for this content or functionality.",
    "status": "UNAUTHORIZED",
}
INVALID_SENDER = {
    "message": "You cannot be authorized for this content or functionality.",
    "result": "Rejected",
    "status": "INVALID_SENDER",
}
REPLACEMENT = {
    "message": (
        "Some of the data represents a replacement: existing values would be changed "
        "for the same sensor, source, event timestamp and belief time. This is reserved "
        "for customized servers. If you are hosting FlexMeasures, you can enable "
        "replacements by setting FLEXMEASURES_ALLOW_DATA_OVERWRITE=True in the "
        "configuration settings. Alternatively, submit the data with a different prior, "
        "or check whether the same file was already uploaded with different values."
    ),
    "results": "Rejected",
    "status": "INVALID_REPLACEMENT",
}
ALREADY_RECEIVED = {
    "message": "Some of the data has already been received and successfully processed.",
    "results": "PROCESSED",
    "status": "ALREADY_RECEIVED_AND_SUCCESSFULLY_PROCESSED",
}
DATA_FIELDS = frozenset(
    {"start", "duration", "unit", "resolution", "horizon", "prior", "source"}
    | {"source-account", "source-type", "type"}
)
POST_FIELDS = frozenset(
    {"values", "start", "duration", "unit", "prior", "horizon", "type", "sensor"}
)
POST_TYPES = (
    "PostSensorDataRequest",
    "PostMeterDataRequest",
    "PostPrognosisRequest",
    "PostPriceDataRequest",
    "PostWeatherDataRequest",
)
TRIGGER_FIELDS = frozenset(
    {"start", "duration", "resolution", "prior", "flex-model", "flex-context"}
    | {"force-new-job-creation", "force_new_job_creation"}
)
FLEX_MODEL_FIELDS = frozenset(
    {"soc-at-start", "soc-unit", "soc-min", "soc-max", "soc-minima", "soc-maxima"}
    | {"soc-targets", "soc-gain", "soc-usage", "power-capacity", "state-of-charge"}
    | {"consumption-capacity", "production-capacity", "roundtrip-efficiency"}
    | {"charging-efficiency", "discharging-efficiency", "storage-efficiency"}
    | {"prefer-charging-sooner", "prefer-curtailing-later"}
)
FLEX_CONTEXT_FIELDS = frozenset(
    {"consumption-price", "production-price", "consumption-price-sensor"}
    | {"production-price-sensor", "site-power-capacity", "inflexible-device-sensors"}
    | {"site-consumption-capacity", "site-production-capacity"}
)
SUNSET: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "v1": (
        "1.0",
        (("GET", "getMeterData"), ("POST", "postMeterData"), ("GET", "getService")),
    ),
    "v1_1": (
        "1.1",
        (
            ("GET", "getConnection"),
            ("GET", "getMeterData"),
            ("POST", "postMeterData"),
            ("GET", "getPrognosis"),
            ("POST", "postPrognosis"),
            ("POST", "postPriceData"),
            ("POST", "postWeatherData"),
            ("GET", "getService"),
        ),
    ),
    "v2_0": (
        "2.0",
        (
            ("GET", "getConnection"),
            ("GET", "getMeterData"),
            ("POST", "postMeterData"),
            ("GET", "getPrognosis"),
            ("POST", "postPrognosis"),
            ("POST", "postPriceData"),
            ("POST", "postWeatherData"),
            ("GET", "getDeviceMessage"),
            ("POST", "postUdiEvent"),
            ("GET", "getService"),
        ),
    ),
}
SERVICES = (
    ("GET", "", "Obtain a service listing for this version"),
    ("GET", "/assets", "List all assets owned by the current user's account."),
    ("GET", "/assets/<id>", "Fetch a given asset."),
    ("GET", "/assets/<id>/sensors", "Fetch the sensors of a given asset."),
    ("GET", "/health/ready", "Get readiness status"),
    ("GET", "/jobs/<uuid>", "Get the status of a job."),
    ("GET", "/sensors", "Get list of sensors"),
    ("GET", "/sensors/<id>", "Fetch a given sensor"),
    ("GET", "/sensors/<id>/data", "Get sensor data"),
    ("POST", "/sensors/<id>/data", "Post sensor data"),
    ("GET", "/sensors/<id>/schedules/<uuid>", "Get schedule for one device"),
    (
        "POST",
        "/sensors/<id>/schedules/trigger",
        "Trigger scheduling job for one device",
    ),
)

type Answer = tuple[int, Any]
type Headers = CIMultiDict[str]
type Kind = Literal["public", "health", "token", "auth", "optional"]


def unprocessable(message: Any) -> Answer:
    """Return a 422 UNPROCESSABLE_ENTITY answer."""
    return 422, {
        "message": message,
        "result": "Rejected",
        "status": "UNPROCESSABLE_ENTITY",
    }


def data_error(errors: dict[str, list[str]]) -> Answer:
    """Return the /data endpoints' 422 with field errors."""
    return unprocessable({"combined_sensor_data_description": errors})


def v1_error(status: int, code: str, message: str) -> Answer:
    """Return a v1.1-style error answer."""
    return status, {"message": message, "result": "Rejected", "status": code}


def html(status: int, headers: Headers) -> web.Response:
    """Return the real server's HTML error pages (shortened)."""
    title = {
        404: "The page you are looking for cannot be found.",
        405: "We encountered an Http exception.",
    }[status]
    text = (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>Error : {title}  - FlexMeasures</title></head>\n"
        f"<body><h1>Error {status}</h1><p>{title}</p></body>\n</html>\n"
    )
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )


def damage(payload: Any) -> Any:
    """Drop identity keys from an answer (``missing_fields``), rows of a page too."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        return {**payload, "data": drop_required_fields(payload["data"], IDENTITY_KEYS)}
    return drop_required_fields(payload, IDENTITY_KEYS)


def iso(at: datetime | None) -> str | None:
    """Format an instant as UTC ISO 8601 (None stays None)."""
    return None if at is None else at.astimezone(UTC).isoformat()


def asset_type(asset: SimAsset) -> dict[str, Any]:
    """Return the generic_asset_type object of an asset."""
    return {"id": ASSET_TYPES[asset.type_name], "name": asset.type_name}


def limit_headers(
    headers: Headers, limit: int, used: int, end: datetime, now: datetime
) -> None:
    """Set the X-RateLimit-* and Retry-After headers."""
    headers["X-RateLimit-Limit"] = str(limit)
    headers["X-RateLimit-Remaining"] = str(max(0, limit - used))
    headers["X-RateLimit-Reset"] = str(int(end.timestamp()))
    headers["Retry-After"] = str(max(0, math.ceil((end - now).total_seconds())))


def too_many(limit: int, window: timedelta) -> Answer:
    """Return the 429 answer of a limit."""
    minutes = int(window.total_seconds() // 60)
    return 429, {
        "message": f"You hit a rate limit. The limit you hit allows {limit} per {minutes} minute.",
        "result": "Rejected",
        "status": "TOO_MANY_REQUESTS",
    }


def ingestion_answer(outcome: Ingested) -> Answer:
    """Return PROCESSED, or ALREADY_RECEIVED when beliefs were skipped."""
    if outcome.status == "success":
        return 200, {"message": PROCESSED, "status": "PROCESSED"}
    return 200, ALREADY_RECEIVED


def page(request: web.Request, rows: list[dict[str, Any]], *, always: bool) -> Answer:
    """Return a plain list, or the paged shape when ``page`` is given (or always)."""
    query = request.query
    if "page" not in query and not always:
        return 200, rows
    errors: dict[str, list[str]] = {}
    numbers: dict[str, int] = {}
    for key, default in (("page", 1), ("per_page", 10)):
        raw = query.get(key, query.get(key.replace("_", "-"), str(default)))
        if not raw.lstrip("-").isdigit():
            errors[key] = ["Not a valid integer."]
        elif int(raw) < 1:
            errors[key] = ["Must be greater than or equal to 1."]
        else:
            numbers[key] = int(raw)
    if errors:
        return unprocessable({"query": errors})
    first = (numbers["page"] - 1) * numbers["per_page"]
    return 200, {
        "data": rows[first : first + numbers["per_page"]],
        "filtered-records": len(rows),
        "num-records": len(rows),
        "status": 200,
    }


async def json_body(request: web.Request) -> tuple[Any, bool]:
    """Return the JSON body (None when empty) and whether it was broken JSON."""
    if not request.body_exists:
        return None, False
    if request.content_length is None or request.content_length > 1_000_000:
        # Past aiohttp's own 1 MiB limit: read the stream (the log shows no body then).
        raw = await request.content.read()
    else:
        raw = await request.read()
    if not raw.strip():
        return None, request.content_type == "application/json"
    if request.content_type != "application/json":
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def parse_fields(
    params: dict[str, Any], errors: dict[str, list[str]], required: tuple[str, ...]
) -> dict[str, Any]:
    """Parse start, duration, resolution, prior (and check unit); collect errors."""
    parsed: dict[str, Any] = {}
    for key in required:
        if key not in params:
            errors[key] = ["Missing data for required field."]
    parsers: dict[str, Callable[[Any], Any]] = {
        "start": parse_aware,
        "prior": parse_aware,
        "duration": parse_duration,
        "resolution": parse_fixed_duration,
    }
    for key, parse in parsers.items():
        if key in params:
            try:
                parsed[key] = parse(params[key])
            except FieldError as err:
                errors[key] = [str(err)]
    if "unit" in params and not isinstance(params["unit"], str):
        errors["unit"] = ["Not a valid string."]
    return parsed


def number(value: Any) -> float | None:
    """Return a posted value: null, a number or a numeric string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError("Not a valid number.")
    try:
        return float(value)
    except TypeError, ValueError:
        raise FieldError("Not a valid number.") from None


_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z%]+)\s*$")
_ENERGY_KWH = {"Wh": 0.001, "kWh": 1.0, "MWh": 1000.0}
_POWER_KW = {"W": 0.001, "kW": 1.0, "MW": 1000.0}


def _quantity(
    name: str, value: Any, units: dict[str, float], default: str, target: str
) -> float:
    """Return a flex-model quantity in kWh/kW: "5 kWh" strings or numbers in ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) * units[default]
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if match is None or match.group(2) not in units:
        raise FieldError(f"{name}: Cannot convert value `{value}` to '{target}'")
    return float(match.group(1)) * units[match.group(2)]


def storage_model(
    flex_model: dict[str, Any], start: datetime, resolution: timedelta, steps: int
) -> StorageModel:
    """Read a flex-model (defaults: the demo battery) into kWh and kW."""
    soc_unit = flex_model.get("soc-unit", "MWh")
    if soc_unit not in _ENERGY_KWH:
        raise FieldError(f"soc-unit: Must be one of: {', '.join(_ENERGY_KWH)}.")

    def energy(key: str, default: float) -> float:
        if key not in flex_model:
            return default
        return _quantity(key, flex_model[key], _ENERGY_KWH, soc_unit, "MWh")

    def power(key: str, default: float) -> float:
        if key not in flex_model:
            return default
        return abs(_quantity(key, flex_model[key], _POWER_KW, "MW", "MW"))

    soc_min = energy("soc-min", 0.0)
    soc_max = energy("soc-max", 10.0)
    capacity = power("power-capacity", 5.0)
    if capacity <= 0:
        raise FieldError("power-capacity: Must be greater than 0.")
    targets: dict[int, float] = {}
    raw_targets = flex_model.get("soc-targets", [])
    if not isinstance(raw_targets, list):
        raise FieldError("soc-targets: Not a valid list.")
    for target in raw_targets:
        if not isinstance(target, dict) or "value" not in target:
            raise FieldError("soc-targets: Missing data for required field.")
        try:
            when = parse_aware(target.get("datetime", target.get("start")))
        except FieldError as err:
            raise FieldError(f"soc-targets: {err}") from None
        index = round((when - start) / resolution)
        if not 0 <= index <= steps:
            raise FieldError(
                "soc-targets: Target datetime exceeds the planning window."
            )
        targets[index] = _quantity(
            "soc-targets", target["value"], _ENERGY_KWH, soc_unit, "MWh"
        )
    return StorageModel(
        soc_at_start=energy("soc-at-start", soc_min),
        soc_min=soc_min,
        soc_max=soc_max,
        power_kw=capacity,
        charge_kw=min(capacity, power("consumption-capacity", capacity)),
        discharge_kw=min(capacity, power("production-capacity", capacity)),
        targets=targets,
    )
