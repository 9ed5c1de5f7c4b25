"""`scripts/develop` keeps its banner on screen; `--follow` shows the logs under it.

Each case starts scripts/develop (the simulator and Home Assistant) in a temporary
state directory on free ports, as the browser test does.
"""

from pathlib import Path
import time

import pytest

from tests.develop_process import develop_process

pytestmark = pytest.mark.e2e

# A line as Home Assistant writes to its log; the test appends it.
LOG_LINE = "2026-01-01 00:00:00.000 WARNING (MainThread) [tests.e2e] a line to follow"


@pytest.mark.parametrize("follow", [False, True], ids=["quiet", "follow"])
def test_the_banner_stays_unless_asked_to_follow(
    loopback: None, tmp_path: Path, follow: bool
) -> None:
    """By default nothing comes after the banner; --follow prints new log lines."""
    with develop_process(tmp_path, *(["--follow"] if follow else [])) as develop:
        printed = develop.printed()
        log = develop.state / "hass.log"
        assert f"Logs: {log}" in printed  # where to look, in the banner
        with log.open("a") as output:
            output.write(LOG_LINE + "\n")
        deadline = time.monotonic() + (10 if follow else 3)
        while time.monotonic() < deadline and LOG_LINE not in develop.printed():
            time.sleep(0.1)
        after_banner = [line for line in develop.after_banner() if line.strip("= ")]
    if follow:
        assert f"[hass] {LOG_LINE}" in after_banner
    else:
        assert after_banner == []
    assert "scripts/develop: stopped" in develop.printed()
