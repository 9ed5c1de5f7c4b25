"""Set a large account up in a real Home Assistant while a frontend is connected.

    scripts/bench --frontend [--read-delay MS] [--seconds 60] [--partner ID]

The simulator and Home Assistant run in processes of their own (scripts/develop's
throwaway setup, on free ports). A websocket client subscribes as Home Assistant's
frontend does on every page: `subscribe_entities` (coalesced messages), and the
`entity_registry_updated` and `device_registry_updated` events, each answered by
fetching the whole list again (debounced by 500 ms, as the frontend does). It reads
each frame `--read-delay` ms late, as a busy browser tab does. Then the Locus demo
partner (the simulator's largest account, all its sites) is added through the
config flow, as the UI does, and the client counts what reaches it in the first
`--seconds`. Prints a Markdown table: devices, entities (enabled), messages and
bytes, whether Home Assistant dropped the connection ("Client unable to keep up").
"""

import argparse
import asyncio
from contextlib import suppress
from dataclasses import dataclass, field
import json
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.develop_config.wait_ready import Client  # noqa: E402
from tests.simulator import locus  # noqa: E402
from tests.simulator.process import (  # noqa: E402
    free_port,
    hass_subprocess,
    simulator_subprocess,
)

DOMAIN = "cloud_energy_meters"
USER, PASSWORD = "bench", "bench-password"
FLOW = "/api/config/config_entries/flow"
DROPPED = "Client unable to keep up"
REFETCH = {
    "entity_registry_updated": "config/entity_registry/list_for_display",
    "device_registry_updated": "config/device_registry/list",
}


@dataclass
class Frontend:
    """What a frontend-like websocket client received."""

    read_delay: float
    frames: int = 0
    messages: int = 0
    bytes: int = 0
    dropped_after: float | None = None
    started: float = field(default_factory=time.monotonic)
    _next_id: int = 1
    pending: set[str] = field(default_factory=set)

    def next_id(self) -> int:
        """Return a new message id."""
        self._next_id += 1
        return self._next_id


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, client: Frontend) -> None:
    """Subscribe as the frontend does after its login."""
    await ws.send_json(
        {
            "id": client.next_id(),
            "type": "supported_features",
            "features": {"coalesce_messages": 1},
        }
    )
    await ws.send_json({"id": client.next_id(), "type": "subscribe_entities"})
    for event in REFETCH:
        await ws.send_json(
            {"id": client.next_id(), "type": "subscribe_events", "event_type": event}
        )


async def _read(
    ws: aiohttp.ClientWebSocketResponse, client: Frontend, until: float
) -> None:
    """Read frames slowly until `until`; refetch a registry after its events."""

    async def refetch(event: str) -> None:
        await asyncio.sleep(0.5)
        client.pending.discard(event)
        with suppress(ConnectionError, RuntimeError):
            await ws.send_json({"id": client.next_id(), "type": REFETCH[event]})

    tasks: set[asyncio.Task[None]] = set()
    while (left := until - time.monotonic()) > 0:
        try:
            frame = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if frame.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            client.dropped_after = time.monotonic() - client.started
            break
        data = frame.data if isinstance(frame.data, str) else frame.data.decode()
        client.frames += 1
        client.bytes += len(data)
        decoded = json.loads(data)
        messages = decoded if isinstance(decoded, list) else [decoded]
        client.messages += len(messages)
        for message in messages:
            event = (message.get("event") or {}).get("event_type")
            if event in REFETCH and event not in client.pending:
                client.pending.add(event)
                task = asyncio.create_task(refetch(event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if client.read_delay:
            await asyncio.sleep(client.read_delay)
    for task in tasks:
        task.cancel()


async def _connect(
    session: aiohttp.ClientSession, url: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(
        f"{url.replace('http', 'ws', 1)}/api/websocket", max_msg_size=0
    )
    await ws.receive_json()  # auth_required
    await ws.send_json({"type": "auth", "access_token": token})
    answer = await ws.receive_json()
    if answer.get("type") != "auth_ok":
        raise RuntimeError(f"websocket login refused: {answer}")
    return ws


async def _call(
    ws: aiohttp.ClientWebSocketResponse, ident: int, command: str, **fields: Any
) -> Any:
    """Send one command and return its result (skipping other messages)."""
    await ws.send_json({"id": ident, "type": command, **fields})
    while True:
        decoded = await ws.receive_json()
        for message in decoded if isinstance(decoded, list) else [decoded]:
            if message.get("id") == ident and message.get("type") == "result":
                if not message.get("success"):
                    raise RuntimeError(f"{command}: {message.get('error')}")
                return message["result"]


def _add_locus_entry(client: Client, sim: str, partner: int) -> float:
    """Walk the config flow as the UI does (every site kept); return its seconds."""
    started = time.monotonic()
    result = client.json("POST", FLOW, data={"handler": DOMAIN})
    result = client.json(
        "POST", f"{FLOW}/{result['flow_id']}", data={"next_step_id": "locus"}
    )
    form = {
        "client_id": locus.DEMO_CLIENT_ID,
        "client_secret": locus.DEMO_CLIENT_SECRET,
        "username": locus.DEMO_USERNAME,
        "password": locus.DEMO_PASSWORD,
        "partner_id": str(partner),
        "advanced": {"api_url": sim + locus.PREFIX},
    }
    result = client.json("POST", f"{FLOW}/{result['flow_id']}", data=form)
    if result.get("step_id") == "sites":
        sites = [str(site.id) for site in locus.SITES if site.partner_id == partner]
        result = client.json(
            "POST", f"{FLOW}/{result['flow_id']}", data={"sites": sites}
        )
    if result.get("type") != "create_entry":
        raise RuntimeError(f"the config flow did not create the entry: {result}")
    return time.monotonic() - started


def _prepare(config: Path, port: int) -> None:
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / DOMAIN).symlink_to(
        ROOT / "custom_components" / DOMAIN
    )
    develop = ROOT / "scripts" / "develop_config"
    shutil.copy(develop / "configuration.yaml", config)
    subprocess.run(
        [
            *(sys.executable, develop / "prepare.py", config, "--port", str(port)),
            *("--username", USER, "--password", PASSWORD),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _log_in(url: str, process: subprocess.Popen[bytes]) -> Client:
    client = Client(url)
    deadline = time.monotonic() + 300
    while True:
        try:
            client.login(USER, PASSWORD)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Home Assistant did not start") from None
            time.sleep(0.5)
    while client.json("GET", "/api/config")["state"] != "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError("Home Assistant did not reach RUNNING")
        time.sleep(0.5)
    return client


async def _measure(
    url: str, client: Client, sim: str, args: argparse.Namespace
) -> dict[str, Any]:
    assert client.token is not None
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, url, client.token)
        frontend = Frontend(read_delay=args.read_delay / 1000)
        await _subscribe(ws, frontend)
        reader = asyncio.create_task(
            _read(ws, frontend, time.monotonic() + args.seconds)
        )
        flow_seconds = await asyncio.to_thread(
            _add_locus_entry, client, sim, args.partner
        )
        await reader
        await ws.close()
        ws = await _connect(session, url, client.token)
        entries = [
            entry
            for entry in await _call(ws, 1, "config_entries/get")
            if entry["domain"] == DOMAIN
        ]
        entry_ids = {entry["entry_id"] for entry in entries}
        devices = [
            d
            for d in await _call(ws, 2, "config/device_registry/list")
            if set(d["config_entries"]) & entry_ids
        ]
        entities = [
            e
            for e in await _call(ws, 3, "config/entity_registry/list")
            if e["config_entry_id"] in entry_ids
        ]
        await ws.close()
    return {
        "flow": flow_seconds,
        "frontend": frontend,
        "devices": len(devices),
        "entities": len(entities),
        "enabled": sum(1 for e in entities if e["disabled_by"] is None),
        "state": entries[0]["state"] if entries else "none",
    }


def main() -> None:
    """Measure one setup and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontend", action="store_true")
    parser.add_argument("--read-delay", type=float, default=0.0, help="ms per frame")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--partner", type=int, default=locus.DEMO_PARTNER_ID)
    parser.add_argument("--log", type=Path, help="keep Home Assistant's log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-frontend-") as tmp:
        config, port = Path(tmp) / "config", free_port()
        _prepare(config, port)
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "hass.log"
        with (
            simulator_subprocess(Path(tmp) / "simulator.log") as sim,
            hass_subprocess(config, log) as process,
        ):
            client = _log_in(url, process)
            result = asyncio.run(_measure(url, client, sim, args))
        drops = log.read_text(errors="replace").count(DROPPED)
        if args.log:
            shutil.copy(log, args.log)
    frontend: Frontend = result["frontend"]
    sites = sum(1 for site in locus.SITES if site.partner_id == args.partner)
    print(
        f"| Locus partner {args.partner} ({sites} sites), frontend reading "
        f"{args.read_delay:g} ms late | value |"
    )
    print("|---|---:|")
    rows = [
        ("config flow, sites submitted to entry created (s)", f"{result['flow']:.1f}"),
        ("devices", result["devices"]),
        ("entities", f"{result['entities']:,}"),
        ("entities enabled", f"{result['enabled']:,}"),
        (f"websocket messages, first {args.seconds:g} s", f"{frontend.messages:,}"),
        (f"websocket frames, first {args.seconds:g} s", f"{frontend.frames:,}"),
        (f"websocket MB, first {args.seconds:g} s", f"{frontend.bytes / 1e6:.1f}"),
        (
            "connection dropped by Home Assistant",
            "no"
            if frontend.dropped_after is None
            else f"yes, after {frontend.dropped_after:.0f} s",
        ),
        (f'"{DROPPED}" in its log', drops),
        ("entry state", result["state"]),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
