"""Seed a real FlexMeasures server for the project's tests (run by scripts/flexmeasures-server).

Runs with the FlexMeasures venv's Python (3.11/3.12), never with the project's.

    python flexmeasures_seed.py schema          (inside the server's config: HOME set)
        migrate the empty database, create the accounts, users, assets and sensors;
        print one line "SEED {json}" with their ids by name.
    python flexmeasures_seed.py data URL SEED_JSON
        post the demo data through the API (fresh database each start, so the recent
        windows follow the clock); print one line "DATA {json}" with the windows used.

Environment: DEMO_EMAIL, DEMO_PASSWORD, OTHER_EMAIL, OTHER_PASSWORD.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
import os
import sys
import time
from typing import Any
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

AMS = ZoneInfo("Europe/Amsterdam")
CONSUMPTION_IS_POSITIVE = {"consumption_is_positive": True}

# (asset, sensor, unit, minutes, attributes); names are what tests look ids up by.
DEMO_SENSORS = [
    ("Demo house", "grid power", "kW", 15, CONSUMPTION_IS_POSITIVE),
    ("Demo house", "energy meter", "kWh", 60, {}),
    ("Demo house", "day-ahead price", "EUR/MWh", 60, {}),
    ("Demo house", "indoor temperature", "°C", 15, {}),
    ("Demo house", "power from Home Assistant", "kW", 15, {}),
    ("Demo house", "energy from Home Assistant", "kWh", 60, {}),
    ("Home battery", "battery power", "kW", 15, CONSUMPTION_IS_POSITIVE),
    ("Home battery", "state of charge", "%", 15, {}),
]
OTHER_SENSORS = [("Other battery", "battery power", "kW", 15, CONSUMPTION_IS_POSITIVE)]


def seed_schema() -> dict[str, Any]:
    """Migrate the database and create the seed objects; return their ids by name."""
    # Only in the FlexMeasures venv.
    from flexmeasures.app import create  # noqa: PLC0415

    app = create()
    with app.app_context():
        return _seed_schema()


def _seed_schema() -> dict[str, Any]:
    # Imports need the app context of a created app.
    import flask_migrate  # noqa: PLC0415
    from flexmeasures.data import db  # noqa: PLC0415
    from flexmeasures.data.models.generic_assets import (  # noqa: PLC0415
        GenericAsset,
        GenericAssetType,
    )
    from flexmeasures.data.models.time_series import Sensor  # noqa: PLC0415
    from flexmeasures.data.models.user import Account, AccountRole  # noqa: PLC0415
    from flexmeasures.data.scripts.data_gen import (  # noqa: PLC0415
        provision_default_template_assets,
    )
    from flexmeasures.data.services.users import create_user  # noqa: PLC0415

    flask_migrate.upgrade()
    # The public template assets a fresh 1.x server creates at its first start: made
    # here, in the snapshot, or a server and a worker starting together on a fresh
    # database both create them and one dies on a UniqueViolation.
    provision_default_template_assets(db)
    db.session.commit()

    def account(name: str, role: str | None) -> Any:
        acc = Account(name=name)
        if role:
            acc.account_roles.append(AccountRole(name=role))
        db.session.add(acc)
        db.session.flush()
        return acc

    def user(username: str, email: str, password: str, acc: Any) -> Any:
        found = create_user(
            username=username,
            email=email,
            password=password,
            account_name=acc.name,
            timezone="Europe/Amsterdam",
            user_roles=["account-admin"],
            check_email_deliverability=False,
        )
        db.session.flush()
        return found

    types: dict[str, Any] = {}

    def asset(
        name: str, acc: Any, kind: str, lat: float, lon: float, parent: Any = None
    ) -> Any:
        if kind not in types:
            found = (
                db.session.query(GenericAssetType).filter_by(name=kind).one_or_none()
            )
            types[kind] = found or GenericAssetType(name=kind)
        made = GenericAsset(
            name=name,
            owner=acc,
            generic_asset_type=types[kind],
            latitude=lat,
            longitude=lon,
            parent_asset_id=parent.id if parent is not None else None,
        )
        db.session.add(made)
        db.session.flush()
        return made

    env = os.environ
    demo = account("Demo Prosumer", "Prosumer")
    demo_user = user("demo", env["DEMO_EMAIL"], env["DEMO_PASSWORD"], demo)
    other = account("Other Company", None)
    other_user = user("other", env["OTHER_EMAIL"], env["OTHER_PASSWORD"], other)
    house = asset("Demo house", demo, "building", 52.37, 4.89)
    assets = {
        "Demo house": house,
        "Home battery": asset("Home battery", demo, "battery", 52.37, 4.89, house),
        "Other battery": asset("Other battery", other, "battery", 52.0, 5.0),
    }
    sensors: dict[str, dict[str, Any]] = {name: {} for name in assets}
    for asset_name, name, unit, minutes, attributes in DEMO_SENSORS + OTHER_SENSORS:
        made = Sensor(
            name=name,
            generic_asset=assets[asset_name],
            unit=unit,
            event_resolution=timedelta(minutes=minutes),
            timezone="Europe/Amsterdam",
            attributes=dict(attributes),
        )
        db.session.add(made)
        db.session.flush()
        sensors[asset_name][name] = made
    db.session.commit()
    return {
        "users": {
            "demo": {
                "user_id": demo_user.id,
                "account_id": demo.id,
                "account": demo.name,
            },
            "other": {
                "user_id": other_user.id,
                "account_id": other.id,
                "account": other.name,
            },
        },
        "assets": {name: made.id for name, made in assets.items()},
        "sensors": {
            asset_name: {name: made.id for name, made in by_name.items()}
            for asset_name, by_name in sensors.items()
        },
    }


# --- demo data ------------------------------------------------------------------


def last_dst_change(now: datetime) -> datetime:
    """Return the UTC instant of the most recent past offset change in Europe/Amsterdam."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    offset = hour.astimezone(AMS).utcoffset()
    for _ in range(24 * 366):
        earlier = hour - timedelta(hours=1)
        if earlier.astimezone(AMS).utcoffset() != offset:
            return hour
        hour = earlier
    msg = "no DST change in Europe/Amsterdam in the last year"
    raise RuntimeError(msg)


def dst_window(change: datetime) -> tuple[datetime, datetime]:
    """12:00 local the day before the change to 12:00 local the day after (UTC)."""
    day = change.astimezone(AMS).date()
    start = datetime(day.year, day.month, day.day, 12, tzinfo=AMS) - timedelta(days=1)
    after = day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, 12, tzinfo=AMS)
    # Day arithmetic on aware datetimes keeps the wall clock: 12:00 local both ends.
    return start.astimezone(UTC), end.astimezone(UTC)


def grid_kw(t: datetime) -> float:
    """Grid power at a quarter-hour: imports and exports (negative) both occur."""
    quarter = int(t.timestamp()) // 900
    return [1.5, 2.25, 0.75, -0.5, -1.25, 0.25, 3.0, -2.0][quarter % 8]


def battery_kw(t: datetime) -> float:
    """Battery power: charging (positive) and discharging."""
    quarter = int(t.timestamp()) // 900
    return [2.0, 2.0, 1.0, 0.0, -1.5, -3.0, -0.5, 0.5][quarter % 8]


def meter_kwh(t: datetime) -> float:
    """Energy per hour, never negative."""
    return round(0.3 + (int(t.timestamp()) // 3600 % 24) * 0.05, 2)


def steps(start: datetime, end: datetime, minutes: int) -> list[datetime]:
    """Event starts from start (inclusive) to end (exclusive)."""
    out = []
    step = timedelta(minutes=minutes)
    while start < end:
        out.append(start)
        start += step
    return out


class Api:
    """The few requests the seeding needs (standard library only)."""

    def __init__(self, base: str, email: str, password: str) -> None:
        """Remember the server and the user."""
        self.base, self.email, self.password = base, email, password
        self.token = ""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request; return status and decoded body."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def authed(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send with a token; sign in (again) when there is none or it expired."""
        if self.token:
            status, answer = self.request(method, path, body)
            if status != 401:
                return status, answer
        self.token = ""
        creds = {"email": self.email, "password": self.password}
        status, answer = self.request("POST", "/api/requestAuthToken", creds)
        if status != 200:
            msg = f"sign-in as {self.email} failed: {status} {answer}"
            raise RuntimeError(msg)
        self.token = answer["auth_token"]
        return self.request(method, path, body)

    def post(
        self, sensor: int, series: dict[datetime, float | None], minutes: int, unit: str
    ) -> None:
        """Post a series as contiguous runs (nulls stay gaps), following 202 jobs."""
        for run in _runs(sorted(series), minutes):
            body = {
                "values": [series[t] for t in run],
                "start": run[0].isoformat(),
                "duration": f"PT{len(run) * minutes}M",
                "unit": unit,
            }
            status, answer = self.authed(
                "POST", f"/api/v3_0/sensors/{sensor}/data", body
            )
            if status == 202:
                self.wait_job(answer["job"])
            elif status != 200:
                msg = f"POST sensor {sensor} from {body['start']}: {status} {answer}"
                raise RuntimeError(msg)

    def wait_job(self, job: str) -> None:
        """Wait for an ingestion job (server with a worker) to finish."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, answer = self.authed("GET", f"/api/v3_0/jobs/{job}")
            state = answer.get("status") if isinstance(answer, dict) else None
            if status == 200 and state == "FINISHED":
                return
            if state == "FAILED" or status >= 400:
                msg = f"ingestion job {job}: {status} {answer}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        msg = f"ingestion job {job} did not finish in 120 s"
        raise RuntimeError(msg)


def _runs(times: list[datetime], minutes: int) -> list[list[datetime]]:
    step = timedelta(minutes=minutes)
    runs: list[list[datetime]] = []
    for t in times:
        if runs and t - runs[-1][-1] == step:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def post_data(base: str, seed: dict[str, Any]) -> dict[str, Any]:
    """Post the demo data; return the windows used (ISO strings)."""
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    hour = now.replace(minute=0, second=0, microsecond=0)
    recent_q = steps(quarter - timedelta(hours=24), quarter, 15)
    recent_h = steps(hour - timedelta(hours=24), hour, 60)
    change = last_dst_change(now)
    dst_start, dst_end = dst_window(change)
    # One null hour in the DST window, away from the changing hour itself.
    null_hour = dst_start + timedelta(hours=6)
    null_end = null_hour + timedelta(hours=1)

    grid: dict[datetime, float | None] = {t: grid_kw(t) for t in recent_q}
    meter: dict[datetime, float | None] = {t: meter_kwh(t) for t in recent_h}
    for t in steps(dst_start, dst_end, 15):
        grid[t] = None if null_hour <= t < null_end else grid_kw(t)
    for t in steps(dst_start, dst_end, 60):
        meter[t] = None if t == null_hour else meter_kwh(t)

    local_day = now.astimezone(AMS).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow_end = (local_day + timedelta(days=2)).replace(tzinfo=AMS)
    prices = {
        t: 80.0 + (t.astimezone(AMS).hour % 24) * 2.5
        for t in steps(local_day.astimezone(UTC), tomorrow_end.astimezone(UTC), 60)
    }
    temperature = {
        t: round(20.0 + (int(t.timestamp()) // 900 % 12) * 0.25, 2) for t in recent_q
    }
    soc = {t: 20.0 + (int(t.timestamp()) // 900 % 16) * 5.0 for t in recent_q}

    env = os.environ
    sensors = seed["sensors"]
    house, battery = sensors["Demo house"], sensors["Home battery"]
    demo = Api(base, env["DEMO_EMAIL"], env["DEMO_PASSWORD"])
    demo.post(house["grid power"], grid, 15, "kW")
    demo.post(house["energy meter"], meter, 60, "kWh")
    demo.post(house["day-ahead price"], prices, 60, "EUR/MWh")
    demo.post(house["indoor temperature"], temperature, 15, "°C")
    demo.post(battery["battery power"], {t: battery_kw(t) for t in recent_q}, 15, "kW")
    demo.post(battery["state of charge"], soc, 15, "%")
    other = Api(base, env["OTHER_EMAIL"], env["OTHER_PASSWORD"])
    other_battery = sensors["Other battery"]["battery power"]
    other.post(other_battery, {t: battery_kw(t) for t in recent_q}, 15, "kW")
    return {
        "dst": {
            "change": change.isoformat(),
            "start": dst_start.astimezone(AMS).isoformat(),
            "end": dst_end.astimezone(AMS).isoformat(),
            "null_hour": null_hour.astimezone(AMS).isoformat(),
        },
        "recent": {
            "quarter_hours_start": recent_q[0].isoformat(),
            "quarter_hours_end": quarter.isoformat(),
            "hours_start": recent_h[0].isoformat(),
            "hours_end": hour.isoformat(),
            "prices_start": local_day.isoformat(),
            "prices_end": tomorrow_end.isoformat(),
        },
    }


def main(argv: list[str]) -> None:
    """Run one of the two steps."""
    if argv[1:2] == ["schema"]:
        print("SEED " + json.dumps(seed_schema()))
    elif argv[1:2] == ["data"] and len(argv) == 4:
        print("DATA " + json.dumps(post_data(argv[2], json.loads(argv[3]))))
    else:
        sys.exit("usage: flexmeasures_seed.py schema | data URL SEED_JSON")


if __name__ == "__main__":
    main(sys.argv)
