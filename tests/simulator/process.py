"""The simulator in a process of its own, as a real cloud is.

scripts/bench and the memory test measure the provider layer alone: with the
simulator in another process, tracemalloc and the clock see only our side. The
end-to-end tests (tests/e2e) run it next to a real Home Assistant process,
started by `hass_subprocess`.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
import os
from pathlib import Path
import socket
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command(port: int) -> list[str]:
    return [sys.executable, "-m", "tests.simulator", "--port", str(port)]


@asynccontextmanager
async def simulator_process() -> AsyncIterator[str]:
    """Start `python -m tests.simulator` on a free loopback port; yield its root URL."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited on
        _command(port), cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            break
        else:
            raise RuntimeError("the simulator process did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def simulator_subprocess(log: Path) -> Iterator[str]:
    """Like simulator_process, for code without an event loop; output goes to `log`."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            _command(port), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start; see {log}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


HASS_STOP_TIMEOUT = 30
"""Seconds Home Assistant has to stop after SIGTERM before it is killed."""


@contextmanager
def hass_subprocess(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run this venv's `hass -c config` (output to `log`); stop it on the way out."""
    # As scripts/develop: every requirement is installed, so nothing is downloaded.
    env = {**os.environ, "UV_OFFLINE": "1"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeassistant",
                "-c",
                str(config),
                "--log-no-color",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=HASS_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
