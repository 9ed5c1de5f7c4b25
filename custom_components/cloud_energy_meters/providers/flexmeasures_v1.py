"""FlexMeasures API v1.1, for old servers that serve nothing newer.

Sunset in FlexMeasures 0.13 (410 on current servers), it knows no assets: a user has
connections, named by entity address (`ea1.<YYYY-MM>.<authority>:<owner>:<asset>`),
whose meter data is power in MW with consumption positive, as USEF says. Each
connection becomes a site with a power sensor and its energy each way. Errors come
as `{result: "Rejected", status: <CODE>, message}`: the transport makes them
RequestRejected with the message.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import parse
from .errors import InvalidResponse, RequestRejected
from .model import Channel, Kind, Quantity, Role, Site, Unit

V1 = "/api/v1_1"
MW_IN_KW = 1000.0


def connections(payload: Any, refused: Callable[[str, Any], None]) -> list[Site]:
    """Read a GetConnectionResponse: one site per connection (address and name)."""
    payload = parse.mapping(payload, "connections")
    addresses = payload.get("connections")
    names = payload.get("names")
    if not isinstance(addresses, list):
        raise InvalidResponse("FlexMeasures getConnection without connections")
    if not isinstance(names, list) or len(names) != len(addresses):
        names = [None] * len(addresses)
    sites: dict[str, Site] = {}
    for address, name in zip(addresses, names, strict=True):
        try:
            ident = parse.identifier(address, "connection")
        except parse.ValueRefused as err:
            refused("/getConnection", err)
            continue
        sites.setdefault(ident, Site(id=ident, name=parse.text(name) or ident))
    return list(sites.values())


def channels(server: str, site: Site) -> list[Channel]:
    """Return a connection's channels: its power, and energy each way (USEF signs)."""
    base = f"{server}:{site.id}"
    common: dict[str, Any] = {
        "site_id": f"{server}:{site.id}",
        "source": site.name,
        "source_id": site.id,
    }
    found = [
        Channel(
            key=base,
            name=f"{site.name} power",
            label=None,
            quantity=Quantity.POWER,
            kind=Kind.INSTANT,
            unit=Unit.KW,
            ref=(site.id, "value", Unit.KW),
            **common,
        )
    ]
    for way, role, word, sign in (
        ("in", Role.CONSUMPTION, "consumption", 1),
        ("out", Role.PRODUCTION, "production", -1),
    ):
        found.append(
            Channel(
                key=f"{base}:{way}",
                name=f"{site.name} {word}",
                label=None,
                quantity=Quantity.ENERGY,
                kind=Kind.INTERVAL,
                unit=Unit.KWH,
                role=role,
                history=True,
                statistic=f"{server}_{site.id}_{way}",
                ref=(site.id, "energy", str(sign)),
                **common,
            )
        )
    return found


def meter_data_params(address: str, start: str, duration: str) -> Mapping[str, str]:
    """Return a GetMeterDataRequest as query parameters (the server's resolution)."""
    return {
        "type": "GetMeterDataRequest",
        "connection": address,
        "start": start,
        "duration": duration,
        "unit": "MW",
    }


def meter_data(
    payload: Any, start: datetime, refused: Callable[[str, Any], None]
) -> tuple[timedelta, list[tuple[datetime, float]]]:
    """Read a GetMeterDataResponse: its step and each value in kW (gaps left out)."""
    payload = parse.mapping(payload, "meter data")
    values = payload.get("values")
    if not isinstance(values, list) or not values:
        raise InvalidResponse("FlexMeasures getMeterData without values")
    if (resolution := payload.get("resolution")) is not None:
        step = parse.duration(resolution, "resolution")
    else:
        step = parse.duration(payload.get("duration"), "duration") / len(values)
    if step <= timedelta(0):
        raise InvalidResponse("FlexMeasures getMeterData without a resolution")
    if (echoed := payload.get("start")) is not None:
        start = parse.timestamp(echoed, "meter data start")
    found: list[tuple[datetime, float]] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        try:
            found.append(
                (start + index * step, parse.number(value, "meter data") * MW_IN_KW)
            )
        except parse.ValueRefused as err:
            refused("/getMeterData", err)
    return step, found


_TO_MW = {"w": 1e-6, "kw": 1e-3, "mw": 1.0}
_ENERGY_TO_MWH = {"wh": 1e-6, "kwh": 1e-3, "mwh": 1.0}


def in_mw(
    values: Sequence[float | None], unit: str, step: timedelta
) -> list[float | None]:
    """Return values in MW, as a connection takes them (energy: the step's mean).

    Refuse a unit that is neither power nor energy before anything is sent.
    """
    key = unit.strip().casefold()
    if key in _TO_MW:
        factor = _TO_MW[key]
    elif key in _ENERGY_TO_MWH:
        factor = _ENERGY_TO_MWH[key] / (step / timedelta(hours=1))
    else:
        raise RequestRejected(
            f"FlexMeasures v1.1 takes power in MW, not {unit}", 422, "INVALID_UNIT"
        )
    return [None if value is None else value * factor for value in values]
