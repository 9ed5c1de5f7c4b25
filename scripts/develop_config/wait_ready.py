"""Wait until the scripts/develop Home Assistant is usable, the way a user would.

    .venv/bin/python scripts/develop_config/wait_ready.py URL USERNAME PASSWORD \
        [--timeout SECONDS] [--pid PID]

1. waits for the frontend (GET /manifest.json);
2. logs in through the REST login flow (/auth/login_flow, /auth/token), which
   proves the printed credentials work;
3. waits up to --running-timeout seconds for GET /api/config to say the core is
   RUNNING (a config entry whose first refresh is slow keeps Home Assistant
   "starting" for that long; the UI is usable meanwhile, so it only says so);
4. reports whether the cloud_energy_meters handler is offered by
   "Add integration" (GET /api/config/config_entries/flow_handlers).

Exit codes: 0 ready, 1 not ready in time or login failed, 3 process --pid died,
130 interrupted. Standard library only.
"""

import argparse
import json
import os
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

DOMAIN = "cloud_energy_meters"


class Client:
    """Tiny JSON client for Home Assistant's REST API."""

    def __init__(self, base: str) -> None:
        """Remember the base URL."""
        self.base = base.rstrip("/")
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        form: bool = False,
    ) -> tuple[int, bytes]:
        """Send a request; return (status, body). Connection errors raise OSError."""
        headers = {}
        body = None
        if data is not None:
            if form:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(data).encode()
                headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(
            self.base + path, data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and decode the JSON answer; raise on a non-2xx status."""
        status, body = self.request(method, path, **kwargs)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} -> HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    def login(self, username: str, password: str) -> None:
        """Log in like the frontend does and keep the access token."""
        client_id = self.base + "/"
        flow = self.json(
            "POST",
            "/auth/login_flow",
            data={
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": client_id + "?auth_callback=1",
            },
        )
        result = self.json(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            data={"client_id": client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"login as {username!r} refused: {result.get('errors')}")
        tokens = self.json(
            "POST",
            "/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": result["result"],
                "client_id": client_id,
            },
            form=True,
        )
        self.token = tokens["access_token"]


def alive(pid: int | None) -> bool:
    """Return whether the process still runs (True when no pid was given)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    """Wait, log in, check; print one line per stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--running-timeout", type=float, default=15)
    parser.add_argument("--pid", type=int, help="give up when this process exits")
    args = parser.parse_args()
    client = Client(args.url)
    deadline = time.monotonic() + args.timeout

    def waiting(what: str) -> int | None:
        if not alive(args.pid):
            print(f"wait_ready: Home Assistant exited while waiting for {what}")
            return 3
        if time.monotonic() > deadline:
            print(f"wait_ready: gave up after {args.timeout:.0f} s waiting for {what}")
            return 1
        time.sleep(0.5)
        return None

    while True:
        try:
            if client.request("GET", "/manifest.json")[0] == 200:
                break
        except OSError:
            pass
        if (rc := waiting("the web server")) is not None:
            return rc
    print("wait_ready: web server is up")

    try:
        client.login(args.username, args.password)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        print(f"wait_ready: login failed: {err}")
        return 1
    print(f"wait_ready: logged in as {args.username!r}")

    deadline = min(deadline, time.monotonic() + args.running_timeout)
    while True:
        try:
            state = client.json("GET", "/api/config").get("state")
        except OSError, RuntimeError, ValueError:
            state = None
        if state == "RUNNING":
            print("wait_ready: Home Assistant is running")
            break
        if not alive(args.pid):
            print("wait_ready: Home Assistant exited while starting")
            return 3
        if time.monotonic() > deadline:
            print(
                "wait_ready: Home Assistant is still starting (integrations are "
                "being set up); the UI works meanwhile"
            )
            break
        time.sleep(0.5)

    handlers = client.json("GET", "/api/config/config_entries/flow_handlers")
    if DOMAIN in handlers:
        print(f"wait_ready: {DOMAIN} is offered under Add integration")
    else:
        print(f"wait_ready: WARNING: {DOMAIN} is NOT offered under Add integration")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
