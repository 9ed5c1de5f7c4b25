"""`scripts/develop` as a user runs it, in a temporary state directory on free ports.

The browser test clicks through the Home Assistant it starts; tests/e2e checks
what it prints. Its venv is the one running the tests, so `--no-setup`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import signal
import subprocess
import time

from tests.simulator.process import ROOT, free_port

# The banner's last line: Home Assistant is up and the banner is complete.
BANNER_END = "Ctrl-C stops both."
# Seconds, at most, from the start to the banner (a first start in a new config
# directory takes about 20 s on the 2-core CI machine while other tests run).
READY_BOUND = 300


@dataclass(frozen=True)
class Develop:
    """A running scripts/develop: its URLs, state, output and start time."""

    url: str
    sim: str
    state: Path
    output: Path
    started: float  # time.monotonic() when it was started

    def printed(self) -> str:
        """Return what it has printed so far."""
        return self.output.read_text(errors="replace")

    def after_banner(self) -> list[str]:
        """Return the lines it printed after its banner."""
        return self.printed().split(BANNER_END, 1)[1].splitlines()[1:]


def _wait_banner(process: subprocess.Popen[bytes], output: Path) -> None:
    deadline = time.monotonic() + READY_BOUND
    while BANNER_END not in output.read_text(errors="replace"):
        assert process.poll() is None, f"scripts/develop exited: {output.read_text()}"
        assert time.monotonic() < deadline, f"no banner in {READY_BOUND} s"
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Press Ctrl-C, as a user does: it stops Home Assistant and the simulator."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def develop_process(directory: Path, *args: str) -> Iterator[Develop]:
    """Run scripts/develop with its state in `directory`; yield once it is ready."""
    state, output = directory / "develop", directory / "develop.out"
    port, sim_port = free_port(), free_port()
    command = [str(ROOT / "scripts" / "develop"), "--dir", str(state), "--no-setup"]
    command += ["--port", str(port), "--sim-port", str(sim_port), *args]
    started = time.monotonic()
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_banner(process, output)
        url, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
        yield Develop(url, sim, state, output, started)
    finally:
        _stop(process)
