"""A real Home Assistant restarted with an entry of every cloud loads them in seconds.

The other tests run inside the pytest plugin's Home Assistant, which is already
running when an entry is set up. A real start differs: entries are set up while
Home Assistant is still bootstrapping (for at most 300 s), and the recorder
works its queue only once Home Assistant has started, so a setup that waits on
the recorder stalls the start. This test runs `hass` as a user does: the
simulator and Home Assistant in processes of their own (the throwaway setup of
scripts/develop), one entry per cloud made through the config flow over the REST
API, then a restart, timed from the process start.

    .venv/bin/pytest --no-cov -m e2e -s      (-s shows the load times)
"""

from collections.abc import Callable
from pathlib import Path
import re
import shutil
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import pytest

from custom_components.cloud_energy_meters.const import DOMAIN
from scripts.develop_config.wait_ready import Client
from tests.simulator import (
    climkit,
    copper,
    energydata,
    flexmeasures,
    flexmeasures_data as fm_data,
    locus,
)
from tests.simulator.process import (
    ROOT,
    free_port,
    hass_subprocess,
    simulator_subprocess,
)

pytestmark = pytest.mark.e2e

# Seconds from the process start until every entry is loaded, at most. They load
# in about 4 s here; a setup stalled by the recorder takes the bootstrap's 300 s.
LOAD_BOUND = 60
USER, PASSWORD = "e2e", "e2e-password"
FLOW = "/api/config/config_entries/flow"
# A log record of ours that means trouble: an error, a slow or failed setup.
TROUBLE = re.compile(
    r"^\S+ \S+ (ERROR|CRITICAL) |Traceback|is taking over|Waiting for integrations",
    re.MULTILINE,
)


type Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def _copper_sign_in(form: dict[str, Any]) -> str:
    """Open the form's sign-in link, sign in; return the address it ends on."""
    link = form["description_placeholders"]["link"]
    with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310 (loopback)
        assert page.status == 200
    body = urllib.parse.urlencode(
        {"email": copper.DEMO_EMAIL, "otp": copper.DEMO_EMAIL_CODE}
    ).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(urllib.request.Request(link, data=body), timeout=10)
    assert redirect.value.code == 302
    return str(redirect.value.headers["Location"])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stop at the redirect: its address carries the code (as a browser shows it)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _answers(sim: str) -> dict[str, list[Answer]]:
    """Return what a user enters in each cloud's config flow, step by step."""
    copper_advanced = {
        "api_url": sim + copper.PREFIX,
        "auth_url": sim + copper.AUTH_PREFIX,
    }
    return {
        "climkit": [
            {"next_step_id": "climkit"},  # the menu: which cloud
            {
                "username": climkit.DEMO_USERNAME,
                "password": climkit.DEMO_PASSWORD,
                "advanced": {"api_url": sim + climkit.PREFIX},
            },
            {"sites": [climkit.SITE_FERME.id]},  # the smallest: two meters
        ],
        "locus": [
            {"next_step_id": "locus"},
            {
                "client_id": locus.DEMO_CLIENT_ID,
                "client_secret": locus.DEMO_CLIENT_SECRET,
                "username": locus.DEMO_USERNAME,
                "password": locus.DEMO_PASSWORD,
                "partner_id": str(locus.DEMO_PARTNER_ID),
                "advanced": {"api_url": sim + locus.PREFIX},
            },
            {"sites": [str(locus.MAPLE_SITE_ID)]},
        ],
        "energydata": [
            {"next_step_id": "energydata"},
            {
                "api_token": energydata.DEMO_TOKEN,
                "datastreams": "65603, 65607",
                "advanced": {"api_url": sim + energydata.PREFIX},
            },
            # Per datastream, what it is, then its unit; no MQTT topic, so no
            # broker is needed.
            {"name": "Main meter", "type": "energy_register"},
            {"unit": "kWh"},
            {"name": "PV yield", "type": "energy_amount_end"},
            {"unit": "Wh"},
        ],
        "copper": [
            {"next_step_id": "copper"},
            {"next_step_id": "copper_app"},
            # The first link goes to Copper's own sign-in: the simulator's comes
            # with the form sent once with its sign-in URL (no code yet).
            {"code": "-", "advanced": copper_advanced},
            lambda form: {"code": _copper_sign_in(form), "advanced": copper_advanced},
            {"sites": [copper.HOME_PREMISE_ID]},
        ],
        # A self-hosted server: its address is the form's first field. The ids'
        # server part is the host and port the first login met.
        "flexmeasures": [
            {"next_step_id": "flexmeasures"},
            {
                "url": sim + flexmeasures.PREFIX,
                "email": flexmeasures.DEMO_EMAIL,
                "password": flexmeasures.DEMO_PASSWORD,
            },
            {"sites": [f"{urllib.parse.urlsplit(sim).netloc}:{fm_data.HOUSE_ID}"]},
        ],
    }


def _log_in(url: str, process: subprocess.Popen[bytes], deadline: float) -> Client:
    """Log in as soon as the web server answers (it does while entries set up)."""
    client = Client(url)
    while True:
        try:
            client.login(USER, PASSWORD)
        except OSError:
            assert process.poll() is None, "Home Assistant exited; see its log"
            assert time.monotonic() < deadline, "Home Assistant's web server is down"
            time.sleep(0.2)
        else:
            return client


def _wait_running(client: Client, deadline: float) -> None:
    """Wait until Home Assistant has started (users add entries then)."""
    while client.json("GET", "/api/config")["state"] != "RUNNING":
        assert time.monotonic() < deadline, "Home Assistant did not start"
        time.sleep(0.2)


def _add_entry(client: Client, answers: list[Answer]) -> None:
    """Walk the config flow as the UI does: the menu, then each form in turn.

    An answer may depend on the form (a link it shows); a form sent without a code
    (Copper's first) comes back with `invalid_code`, the one error expected.
    """
    result = client.json("POST", FLOW, data={"handler": DOMAIN})
    for answer in answers:
        assert result["type"] in ("menu", "form"), result
        assert result.get("errors") in (None, {}, {"code": "invalid_code"}), result
        data = answer(result) if callable(answer) else answer
        result = client.json("POST", f"{FLOW}/{result['flow_id']}", data=data)
    assert result["type"] == "create_entry", result


def _states(client: Client) -> dict[str, str]:
    """Return our entries' states by title."""
    entries = client.json("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
    return {entry["title"]: entry["state"] for entry in entries}


def _load_times(client: Client, started: float) -> dict[str, float]:
    """Poll until every entry has loaded, one has failed, or LOAD_BOUND has passed.

    Return the seconds from `started` to the first poll that saw each entry loaded
    (an entry may load before the web server answers the first poll).
    """
    loaded: dict[str, float] = {}
    while time.monotonic() < started + LOAD_BOUND:
        states = _states(client)
        for title, state in states.items():
            if state == "loaded":
                loaded.setdefault(title, round(time.monotonic() - started, 1))
        failed = {"setup_error", "setup_retry"} & set(states.values())
        if failed or (states and len(loaded) == len(states)):
            break
        time.sleep(0.2)
    return loaded


def _troubles(log: Path) -> list[str]:
    """Return the log records that name our domain and mean trouble."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log.read_text(errors="replace"))
    return [r for r in records if DOMAIN in r and TROUBLE.search(r)]


@pytest.fixture
def config_dir(tmp_path: Path) -> tuple[Path, str]:
    """Return scripts/develop's Home Assistant config on a free port, and its URL."""
    config = tmp_path / "config"
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / DOMAIN).symlink_to(
        ROOT / "custom_components" / DOMAIN
    )
    develop = ROOT / "scripts" / "develop_config"
    shutil.copy(develop / "configuration.yaml", config)
    port = free_port()
    prepare = [sys.executable, develop / "prepare.py", config, "--port", str(port)]
    credentials = ["--username", USER, "--password", PASSWORD]
    subprocess.run([*prepare, *credentials], check=True, stdout=subprocess.DEVNULL)
    return config, f"http://127.0.0.1:{port}"


def test_a_restart_loads_every_entry_in_seconds(
    loopback: None, tmp_path: Path, config_dir: tuple[Path, str]
) -> None:
    """Entries of every cloud load within LOAD_BOUND of a restart, quietly.

    The Copper app entry's refresh token rotated at its first sign-in and again
    when its entry was set up: only the newest one, saved to the entry at once,
    signs in after the restart (a retired one would revoke them all).
    """
    config, url = config_dir
    logs = [tmp_path / "first-start.log", tmp_path / "restart.log"]
    with simulator_subprocess(tmp_path / "simulator.log") as sim:
        answers = _answers(sim)
        with hass_subprocess(config, logs[0]) as process:
            client = _log_in(url, process, time.monotonic() + LOAD_BOUND)
            _wait_running(client, time.monotonic() + LOAD_BOUND)
            for cloud_answers in answers.values():
                _add_entry(client, cloud_answers)  # returns once the entry is set up
            assert set(_states(client).values()) == {"loaded"}
            assert len(_states(client)) == len(answers)

        with hass_subprocess(config, logs[1]) as process:
            started = time.monotonic()
            client = _log_in(url, process, started + LOAD_BOUND)
            loaded = _load_times(client, started)
            states = _states(client)
    print(f"\nSeconds from the restart to loaded: {loaded}")  # noqa: T201
    not_loaded = {title: state for title, state in states.items() if state != "loaded"}
    assert not not_loaded, f"{LOAD_BOUND} s after the restart: {not_loaded}"
    for log in logs:
        assert not _troubles(log), f"{log.name}: {_troubles(log)}"
