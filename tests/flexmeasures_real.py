"""A real FlexMeasures server for the tests, started once per pytest run.

`scripts/flexmeasures-server` installs FlexMeasures 1.0.1 (cached outside the repository)
and starts it with PostgreSQL and Redis on loopback, seeded (see its header). Here:

    `flexmeasures_real`         session fixture: the default server (no worker, 6 h tokens).
    `flexmeasures_real_worker`  session fixture: a second server with one RQ worker on the
                                "ingestion" and "scheduling" queues (POST .../data answers
                                202 + job, schedules get computed) and 10 s tokens.

Both return a `FlexMeasuresServer`. Tests that talk to it also need `loopback`.

With pytest-xdist every worker process asks for the same server: the controller names
a directory for the run (env CEM_FM_REAL_RUN, inherited by the workers), the first
worker to take the file lock there starts the server, the others read its server.json.
The controller stops every server of the run in pytest_unconfigure (also after a
failure or Ctrl-C); a run killed outright is cleaned up by the next run. A server that
cannot start makes the tests that need it ERROR with the reason (once per run: the
failure is remembered). CEM_FLEXMEASURES_REAL=0 skips them instead, for developers
without PostgreSQL/Redis; CI never sets it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
from dataclasses import dataclass
from datetime import datetime
import fcntl
import json
import os
from pathlib import Path
import secrets
import shutil
import subprocess
import tempfile
from types import MappingProxyType
from typing import Any

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "flexmeasures-server"
RUN_ENV = "CEM_FM_REAL_RUN"
OPT_OUT_ENV = "CEM_FLEXMEASURES_REAL"
RUN_PREFIX = "cem-fm-real-"
# A cold start installs FlexMeasures (~1 GB; 40-80 s here) and builds the DB snapshot.
START_TIMEOUT = 600
# Settings of each server (environment of scripts/flexmeasures-server).
KINDS: dict[str, dict[str, str]] = {
    "default": {},
    "worker": {"FM_WORKER": "1", "FM_TOKEN_MAX_AGE": "10"},
}


@dataclass(frozen=True)
class FlexMeasuresUser:
    """A seeded user: sign in with email and password."""

    email: str
    password: str
    user_id: int
    account_id: int
    account: str


@dataclass(frozen=True)
class DstWindow:
    """Where grid power and energy meter hold data across the last DST change.

    From 12:00 local (Europe/Amsterdam) the day before `change` to 12:00 local the day
    after; the hour from `null_hour` holds nulls.
    """

    change: datetime
    start: datetime
    end: datetime
    null_hour: datetime


@dataclass(frozen=True)
class FlexMeasuresServer:
    """A running server: its root URL, users, ids by name and settings."""

    url: str
    version: str
    worker: bool
    token_max_age: int  # seconds
    rate_limit: str
    trigger_rate_limit: str
    demo: FlexMeasuresUser
    other: FlexMeasuresUser
    assets: Mapping[str, int]  # asset name -> id
    sensors: Mapping[str, Mapping[str, int]]  # asset name -> sensor name -> id
    dst: DstWindow
    recent: Mapping[str, datetime]  # the recent windows' bounds (server.json "recent")
    state_dir: Path

    def sensor(self, asset: str, name: str) -> int:
        """Return the id of an asset's sensor."""
        return self.sensors[asset][name]


def server_from_json(info: Mapping[str, Any]) -> FlexMeasuresServer:
    """Build a FlexMeasuresServer from scripts/flexmeasures-server's server.json."""

    def user(key: str) -> FlexMeasuresUser:
        found = info["users"][key]
        return FlexMeasuresUser(
            email=found["email"],
            password=found["password"],
            user_id=found["user_id"],
            account_id=found["account_id"],
            account=found["account"],
        )

    dst = info["dst"]
    return FlexMeasuresServer(
        url=info["url"],
        version=info["flexmeasures_version"],
        worker=info["worker"],
        token_max_age=info["token_max_age_s"],
        rate_limit=info["rate_limit"],
        trigger_rate_limit=info["trigger_rate_limit"],
        demo=user("demo"),
        other=user("other"),
        assets=MappingProxyType(dict(info["assets"])),
        sensors=MappingProxyType(
            {
                asset: MappingProxyType(dict(ids))
                for asset, ids in info["sensors"].items()
            }
        ),
        dst=DstWindow(
            change=datetime.fromisoformat(dst["change"]),
            start=datetime.fromisoformat(dst["start"]),
            end=datetime.fromisoformat(dst["end"]),
            null_hour=datetime.fromisoformat(dst["null_hour"]),
        ),
        recent=MappingProxyType(
            {
                key: datetime.fromisoformat(value)
                for key, value in info["recent"].items()
            }
        ),
        state_dir=Path(info["state"]),
    )


# --- one run, one server per kind ------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_servers(run_dir: Path) -> None:
    """Stop every server started under a run's directory (in parallel), then remove it."""
    states = sorted(run_dir.iterdir()) if run_dir.is_dir() else []
    stops = [
        subprocess.Popen(
            [str(SCRIPT), "stop"],
            env={**os.environ, "FM_REAL_STATE": str(state)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for state in states
        if (state / "pids").is_dir() or (state / "pg").is_dir()
    ]
    for stop in stops:
        try:
            stop.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop.kill()
    shutil.rmtree(run_dir, ignore_errors=True)


def _reap_stale_runs() -> None:
    """Stop the servers of earlier runs whose pytest died without cleaning up."""
    for run_dir in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        owner = run_dir.name.removeprefix(RUN_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _pid_alive(int(owner)):
            _stop_servers(run_dir)


class _RunOwner:
    """Plugin of the process that named the run directory: stops its servers."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the run's servers (called after failures and Ctrl-C too)."""
        _stop_servers(self.run_dir)
        os.environ.pop(RUN_ENV, None)


def configure(config: pytest.Config) -> None:
    """Name this run's directory (controller or single process; workers inherit it)."""
    if hasattr(config, "workerinput") or os.environ.get(RUN_ENV):
        return  # an xdist worker, or an outer process owns the run
    _reap_stale_runs()
    run_dir = (
        Path(tempfile.gettempdir())
        / f"{RUN_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    )
    os.environ[RUN_ENV] = str(run_dir)
    config.pluginmanager.register(_RunOwner(run_dir), "cem-flexmeasures-real-owner")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_dir() -> Path:
    """Return the run directory (a private one when no controller named it)."""
    if not (named := os.environ.get(RUN_ENV)):
        # Imported without tests/conftest.py's configure: a run of its own.
        named = str(Path(tempfile.gettempdir()) / f"{RUN_PREFIX}{os.getpid()}-solo")
        os.environ[RUN_ENV] = named
    path = Path(named)
    # 0o755: PostgreSQL runs as its own user (when we are root) and must reach the cluster.
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path


def start_server(kind: str) -> FlexMeasuresServer:
    """Return the run's server of this kind, starting it if no process has yet."""
    base = run_dir()
    state = base / kind
    failure = base / f"{kind}.error"
    with _locked(base / f"{kind}.lock"):
        if failure.is_file():
            raise RuntimeError(failure.read_text(encoding="utf-8"))
        if not (state / "server.json").is_file():
            env = {**os.environ, **KINDS[kind], "FM_REAL_STATE": str(state)}
            try:
                result = subprocess.run(
                    [str(SCRIPT), "start"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=START_TIMEOUT,
                )
                reason = (
                    f"exit {result.returncode}: {result.stderr[-3000:]}"
                    if result.returncode
                    else ""
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                reason = repr(err)
            if reason:
                message = (
                    f"the real FlexMeasures server ({kind}) did not start "
                    f"(scripts/flexmeasures-server, state {state}; "
                    f"{OPT_OUT_ENV}=0 skips these tests): {reason}"
                )
                failure.write_text(message, encoding="utf-8")
                raise RuntimeError(message)
        info = json.loads((state / "server.json").read_text(encoding="utf-8"))
    return server_from_json(info)


def _server(kind: str) -> FlexMeasuresServer:
    if os.environ.get(OPT_OUT_ENV) == "0":
        pytest.skip(f"real FlexMeasures server disabled ({OPT_OUT_ENV}=0)")
    return start_server(kind)


@pytest.fixture(scope="session")
def flexmeasures_real() -> FlexMeasuresServer:
    """Return the default real server: no worker, FlexMeasures' 6 h tokens."""
    return _server("default")


@pytest.fixture(scope="session")
def flexmeasures_real_worker() -> FlexMeasuresServer:
    """Return the real server with a worker (202 + jobs, schedules), 10 s tokens."""
    return _server("worker")
