"""From `scripts/develop` to a filled Energy dashboard, clicked in a real browser.

A newcomer's path, as the README tells it, through Home Assistant's own frontend:
Playwright drives Debian's Chromium (/usr/bin/chromium; never a downloaded
browser) against the Home Assistant that `scripts/develop` starts, in a temporary
state directory on free ports. It logs in, adds each cloud through Settings →
Devices & services → Add integration with the demo account the develop banner
prints, checks that the entities show values, accepts each entry's offer to add
its statistics to the Energy dashboard (Settings → Repairs) and checks that the
Energy dashboard shows the entry's numbers for the last 30 days.

Screenshots and the timeline (seconds from the start of `scripts/develop` to each
step, per cloud) are written to artifacts/browser/ (CEM_ARTIFACTS overrides
artifacts/), which CI keeps:

    .venv/bin/pytest --no-cov -m browser -s tests/browser
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import shutil
import time
from typing import Any

from playwright.sync_api import (
    Locator,
    Page,
    TimeoutError as PlaywrightTimeoutError,
    sync_playwright,
)
import pytest

from custom_components.cloud_energy_meters.const import DOMAIN
from tests.develop_process import Develop, develop_process
from tests.simulator import climkit, copper, energydata, flexmeasures, locus
from tests.simulator.process import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

CHROMIUM = Path(os.environ.get("CEM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("CEM_ARTIFACTS", ROOT / "artifacts")) / "browser"
USER, PASSWORD = "dev", "dev"  # what scripts/develop makes and prints
# Seconds, at most, for one cloud's values, offer or dashboard numbers to show up
# (the simulator serves 30 days in seconds; Climkit's one request a second makes
# its import the slowest, about 100 s).
STEP_BOUND = 300
# Playwright's own wait for one element (a click, a form).
UI_TIMEOUT_MS = 30_000
# A value as the frontend shows it: "1,234.5 kWh", "0 W", "80.0%".
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?\s?\S*$")


@dataclass(frozen=True)
class Cloud:
    """What a newcomer picks and types for one cloud, and where its numbers show."""

    menu: str  # its item in "Which cloud?"
    fill: Callable[[Page, Locator, str], None]  # the forms before the sites
    keep: tuple[str, ...]  # the sites kept in the Sites step (all when empty)
    device: str  # the device page whose values are checked (a name's start)
    tab: str  # the Energy dashboard's tab that lists its sources
    dashboard: tuple[str, ...]  # how its rows there start


def _advanced(dialog: Locator, **fields: str) -> None:
    """Open the form's collapsed Advanced section and fill its fields by label."""
    dialog.get_by_text("Advanced", exact=True).click()
    for label, value in fields.items():
        dialog.get_by_role("textbox", name=label).fill(value)


def _fill_climkit(page: Page, dialog: Locator, sim: str) -> None:
    dialog.get_by_role("textbox", name="Username").fill(climkit.DEMO_USERNAME)
    dialog.get_by_role("textbox", name="Password").fill(climkit.DEMO_PASSWORD)
    _advanced(dialog, **{"API URL": sim + climkit.PREFIX})
    _screenshot(page, "climkit-form")
    _submit(dialog)


def _fill_locus(page: Page, dialog: Locator, sim: str) -> None:
    dialog.get_by_role("textbox", name="Client ID").fill(locus.DEMO_CLIENT_ID)
    dialog.get_by_role("textbox", name="Client secret").fill(locus.DEMO_CLIENT_SECRET)
    dialog.get_by_role("textbox", name="SolarOS username").fill(locus.DEMO_USERNAME)
    dialog.get_by_role("textbox", name="SolarOS password").fill(locus.DEMO_PASSWORD)
    dialog.get_by_role("textbox", name="Partner ID").fill(str(locus.DEMO_PARTNER_ID))
    _advanced(dialog, **{"API URL": sim + locus.PREFIX})
    _submit(dialog)


# As the develop banner describes them: the main meter is what the building buys.
_DASHBOARD_ROLES = {65603: "Energy bought from the grid", 65607: "Solar production"}


def _fill_energydata(page: Page, dialog: Locator, sim: str) -> None:
    dialog.get_by_role("textbox", name="API token").fill(energydata.DEMO_TOKEN)
    streams = {65603: "Energy: a meter reading (only grows)"}
    streams[65607] = "Energy: an amount per interval, stamped at its end"
    streams[70001] = "Water: a meter reading (only grows)"
    dialog.get_by_role("textbox", name="Datastream ids").fill(
        ", ".join(map(str, streams))
    )
    _advanced(dialog, **{"API URL": sim + energydata.PREFIX})
    _submit(dialog)
    # One form per datastream, described as the banner lists it; its unit is on the
    # same form or, where the units follow the quantity, on a form of its own.
    for number, (stream, values_are) in enumerate(streams.items(), start=1):
        described = energydata.USER_DATASTREAMS[stream]
        title = f"Datastream {stream} ({number} of {len(streams)})"
        dialog.get_by_text(title, exact=True).wait_for()
        dialog.get_by_role("textbox", name="Name").fill(described["name"])
        label = dialog.get_by_text("Values are *", exact=True)
        label.or_(dialog.get_by_text("Values are", exact=True)).first.click()
        dialog.get_by_role("menuitem", name=values_are, exact=True).click()
        unit_form = f"Datastream {stream}: unit ({number} of {len(streams)})"
        if dialog.get_by_text("Unit", exact=True).count():
            _pick_unit(page, dialog, described["unit"])
        elif number == 1:
            _screenshot(page, "energydata-datastream")
        _submit(dialog)
        try:
            dialog.get_by_text(unit_form, exact=True).wait_for(timeout=5000)
        except PlaywrightTimeoutError:
            continue  # the unit was on the datastream's form
        _pick_unit(page, dialog, described["unit"])
        if stream in _DASHBOARD_ROLES:  # energy: what it counts on the dashboard
            role = _DASHBOARD_ROLES[stream]
            dialog.get_by_text(role, exact=True).click()
            assert dialog.get_by_role("radio", name=role, exact=True).is_checked()
        if number == 1:
            _screenshot(page, "energydata-unit")
        _submit(dialog)


def _pick_unit(page: Page, dialog: Locator, unit: str) -> None:
    """Choose the unit: a radio button, from a list, or typed into a list."""
    if dialog.get_by_role("radio", name=unit, exact=True).count():
        dialog.get_by_text(unit, exact=True).click()  # its label, as a user does
        assert dialog.get_by_role("radio", name=unit, exact=True).is_checked()
        return
    dialog.get_by_text("Unit", exact=True).click()
    search = page.get_by_placeholder("Search | Add custom item")
    listed = dialog.get_by_role("menuitem", name=unit, exact=True)
    search.or_(listed).first.wait_for()
    if search.is_visible():
        search.fill(unit)
        page.locator("ha-picker-combo-box ha-combo-box-item").get_by_text(
            unit, exact=True
        ).first.click()
    else:
        listed.click()


def _fill_copper(page: Page, dialog: Locator, sim: str) -> None:
    """Sign in as the Copper app does: the link, Copper's page, the address it ends on.

    The sign-in ends on a page of api.copperlabs.com that Copper never serves (the
    README says so); the browser here does not go out to it: its address is all
    the form needs, and the route answers in its place.
    """
    dialog.get_by_text(
        "Copper app: I sign in with my e-mail address", exact=True
    ).click()
    _advanced(
        dialog,
        **{"API URL": sim + copper.PREFIX, "Sign-in URL": sim + copper.AUTH_PREFIX},
    )
    # The first link leads to Copper's own sign-in: the form sent once with the
    # simulator's sign-in URL and no code shows the simulator's (banner, README).
    dialog.get_by_role("textbox", name="Address or code").fill("-")
    _submit(dialog)
    link = dialog.get_by_role("link", name="the Copper sign-in page")
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not (link.get_attribute("href") or "").startswith(sim + copper.AUTH_PREFIX):
        assert time.monotonic() < deadline, "no link to the simulator's sign-in"
        page.wait_for_timeout(100)
    page.context.route(
        "https://api.copperlabs.com/**",
        lambda route: route.fulfill(status=404, body="not served in the test"),
    )
    with page.context.expect_page() as opened:
        link.click()
    sign_in = opened.value
    sign_in.locator("input[name=email]").fill(copper.DEMO_EMAIL)
    sign_in.locator("input[name=otp]").fill(copper.DEMO_EMAIL_CODE)
    sign_in.get_by_role("button", name="Sign in").click()
    sign_in.wait_for_url("https://api.copperlabs.com/**")
    address = sign_in.url
    sign_in.close()
    assert "code=" in address
    dialog.get_by_role("textbox", name="Address or code").fill(address)
    _submit(dialog)


def _fill_flexmeasures(page: Page, dialog: Locator, sim: str) -> None:
    server = dialog.get_by_role("textbox", name="Server address")
    server.fill(sim + flexmeasures.PREFIX)
    dialog.get_by_role("textbox", name="E-mail").fill(flexmeasures.DEMO_EMAIL)
    dialog.get_by_role("textbox", name="Password").fill(flexmeasures.DEMO_PASSWORD)
    _submit(dialog)


# Climkit as the README's quick start: every demo site. The others keep one site,
# so the test stays short (each site is more devices, requests and history).
CLOUDS: dict[str, Cloud] = {
    "climkit": Cloud(
        "Climkit",
        _fill_climkit,
        (),
        climkit.SITE_LAC.name,
        "electricity",
        tuple(site.name for site in climkit.SITES),
    ),
    "locus": Cloud(
        "Locus Energy",
        _fill_locus,
        ("Maple Street Residence",),
        "Maple Street Residence",
        "electricity",
        ("Maple Street Residence",),
    ),
    "energydata": Cloud(
        "Energydata.dk",
        _fill_energydata,
        (),
        energydata.USER_DATASTREAMS[65603]["name"],
        "electricity",
        ("Energydata.dk Main meter", "Energydata.dk PV yield"),
    ),
    "copper": Cloud(
        "Copper Labs",
        _fill_copper,
        ("Home",),
        "Home Electric meter",
        "gas",
        ("Home ",),
    ),
    "flexmeasures": Cloud(
        "FlexMeasures",
        _fill_flexmeasures,
        ("Demo house",),
        "Demo house",
        "electricity",
        ("Demo house",),
    ),
}


# --- scripts/develop ---------------------------------------------------------


@pytest.fixture
def develop(loopback: None, tmp_path: Path) -> Iterator[Develop]:
    """Run scripts/develop in a temporary state directory, on free ports."""
    try:
        with develop_process(tmp_path) as running:
            yield running
    finally:
        for log in ("hass.log", "simulator.log"):
            if (tmp_path / "develop" / log).exists():
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp_path / "develop" / log, ARTIFACTS / log)


# --- The frontend ----------------------------------------------------------------

_shots: list[str] = []


def _screenshot(page: Page, name: str, full_page: bool = False) -> None:
    """Save a screenshot into the artifacts, numbered in the order taken."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{len(_shots) + 1:02d}-{name}.png"
    page.screenshot(path=path, full_page=full_page)
    _shots.append(path.name)


def _submit(dialog: Locator) -> None:
    dialog.get_by_role("button", name="Submit", exact=True).click()


def _log_in(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(USER)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    _screenshot(page, "login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/).*$"))
    page.get_by_role("link", name="Settings").wait_for()


def _entry_titles(page: Page) -> dict[str, str]:
    """Return our entries' titles by id, as the frontend has them."""
    entries: list[dict[str, Any]] = page.evaluate(
        """async (domain) => {
            const hass = document.querySelector("home-assistant").hass;
            return await hass.callWS({type: "config_entries/get", domain});
        }""",
        DOMAIN,
    )
    return {entry["entry_id"]: entry["title"] for entry in entries}


def _keep_sites(dialog: Locator, keep: tuple[str, ...]) -> None:
    """In the Sites step, untick every site but those in `keep`."""
    dialog.get_by_role("checkbox").first.wait_for()
    sites = re.findall(r'checkbox "([^"]+)"', dialog.aria_snapshot())
    assert set(keep) <= set(sites), sites
    for site in sites:
        if site not in keep and dialog.get_by_role("checkbox", name=site).is_checked():
            dialog.get_by_text(site, exact=True).click()  # as a user clicks a label


def _add(page: Page, name: str, cloud: Cloud, sim: str) -> str:
    """Add the cloud through Settings → Devices & services; return its entry title."""
    before = _entry_titles(page)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Devices & services").click()
    page.get_by_role("button", name="Add integration").click()
    brands = page.locator("dialog-add-integration")
    brands.get_by_placeholder("Search for a brand name").fill("Cloud Energy Meters")
    brands.get_by_text("Cloud Energy Meters", exact=True).click()
    dialog = page.locator("dialog-data-entry-flow")
    if name == "climkit":
        dialog.get_by_text(cloud.menu, exact=True).wait_for()
        _screenshot(page, "which-cloud")
    dialog.get_by_text(cloud.menu, exact=True).click()
    cloud.fill(page, dialog, sim)
    finish = dialog.get_by_role("button", name="finish")
    sites = dialog.get_by_text("Sites", exact=True)
    finish.or_(sites).first.wait_for(timeout=STEP_BOUND * 1000)
    if sites.is_visible():
        if cloud.keep:
            _keep_sites(dialog, cloud.keep)
        if name == "climkit":
            _screenshot(page, "climkit-sites")
        _submit(dialog)
    finish.wait_for(timeout=STEP_BOUND * 1000)  # the entry is created
    if name == "climkit":
        _screenshot(page, "climkit-devices")
    finish.click()
    added = {k: v for k, v in _entry_titles(page).items() if k not in before}
    assert len(added) == 1, added
    return next(iter(added.values()))


def _poll[T](check: Callable[[], T | None], what: str, reload: Page | None = None) -> T:
    """Call `check` until it returns something; reload the page between tries."""
    deadline = time.monotonic() + STEP_BOUND
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"{what}: not within {STEP_BOUND} s"
        if reload is not None:
            reload.reload()
        time.sleep(2)
    return found


def _device_values(page: Page, cloud: Cloud) -> dict[str, str] | None:
    """Return the device page's sensor values when every one has a value.

    FlexMeasures sensors that Home Assistant writes to ("… from Home Assistant")
    have no value until something is sent to them; they are left out.
    """
    rows = page.locator("ha-device-entities-card hui-generic-entity-row")
    values: dict[str, str] = {}
    for index in range(rows.count()):
        row = rows.nth(index)
        name = row.locator(".info").inner_text().strip()
        state = row.inner_text().strip()
        if "from Home Assistant" not in name:
            values[name] = state
    if values and all(NUMBER.match(state) for state in values.values()):
        return values
    return None


def _check_values(page: Page, develop: Develop, cloud: Cloud) -> dict[str, str]:
    """Open the cloud's device from the integration's page; wait for its values."""
    page.goto(f"{develop.url}/config/integrations/integration/{DOMAIN}")
    # Devices are listed by name: a site comes before its meters ("… PV Meter").
    devices = page.locator("ha-config-entry-device-row")
    devices.get_by_text(cloud.device).first.click()
    page.wait_for_url("**/config/devices/device/**")
    return _poll(lambda: _device_values(page, cloud), f"{cloud.menu} values")


def _accept_offer(page: Page, develop: Develop, title: str) -> None:
    """Open the entry's Energy dashboard offer in Settings → Repairs; submit it."""
    page.goto(f"{develop.url}/config/repairs")
    offer = page.get_by_text(f"Add {title} to the Energy dashboard", exact=True)
    _poll(lambda: offer.first.is_visible() or None, f"{title}'s offer", reload=page)
    if not any("repairs" in shot for shot in _shots):
        _screenshot(page, "repairs")
    offer.first.click()
    dialog = page.locator("dialog-repair-flow, dialog-data-entry-flow")
    dialog.get_by_role("button", name="Submit", exact=True).wait_for()
    # What it adds is listed before the user agrees (the offer's own words).
    dialog.get_by_text("Nothing you have set there already changes").wait_for()
    if not any("offer" in shot for shot in _shots):
        _screenshot(page, "energy-offer")
    _submit(dialog)
    dialog.get_by_text("The issue is repaired!").wait_for()  # Home Assistant's words
    dialog.get_by_role("button", name="Finish", exact=True).click()


# An amount in the sources table: "1,234.56 kWh", "23.1 m³".
AMOUNT = re.compile(r"(-?[\d,]+(?:\.\d+)?)\s*(Wh|kWh|MWh|m³|L|ft³|CCF|gal)")


def _dashboard_rows(page: Page) -> dict[str, float]:
    """Return the tab's sources with their amounts (in the unit shown), by name."""
    rows = page.locator("hui-energy-sources-table-card tr")
    found: dict[str, float] = {}
    for index in range(rows.count()):
        cells = [c.strip() for c in rows.nth(index).inner_text().split("\t")]
        cells = [c for c in cells if c]
        if len(cells) >= 2 and (amount := AMOUNT.fullmatch(cells[-1])):
            found[cells[0]] = float(amount[1].replace(",", ""))
    return found


def _last_30_days(page: Page) -> None:
    page.get_by_role("button", name="Select time period").click()
    page.get_by_text("Last 30 days", exact=True).click()


def _check_dashboard(page: Page, develop: Develop, cloud: Cloud) -> dict[str, float]:
    """Open the Energy dashboard on the last 30 days; wait for the cloud's numbers.

    Each tab (Electricity, Gas, Water) lists its sources; the Summary only totals.
    """
    page.goto(f"{develop.url}/energy/{cloud.tab}")

    def numbers() -> dict[str, float] | None:
        _last_30_days(page)
        page.wait_for_timeout(1500)
        rows = {
            name: amount
            for name, amount in _dashboard_rows(page).items()
            if name.startswith(cloud.dashboard)
        }
        return rows if any(amount > 0 for amount in rows.values()) else None

    return _poll(numbers, f"{cloud.menu} on the Energy dashboard", reload=page)


# --- The test --------------------------------------------------------------------


def _since(develop: Develop) -> float:
    return round(time.monotonic() - develop.started, 1)


def _report(timeline: dict[str, dict[str, float]]) -> str:
    steps = ("added", "values", "offer accepted", "dashboard")
    lines = ["seconds from the start of scripts/develop:"]
    lines.append(f"{'cloud':<14}" + "".join(f"{step:>16}" for step in steps))
    for name, times in timeline.items():
        cells = "".join(f"{times.get(step, float('nan')):>16.1f}" for step in steps)
        lines.append(f"{name:<14}{cells}")
    return "\n".join(lines)


@pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CEM_BROWSER_REQUIRED") != "1",
    reason=f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)",
)
def test_a_newcomer_reaches_a_filled_energy_dashboard(develop: Develop) -> None:
    """Every cloud, added in the browser, fills the Energy dashboard with 30 days."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # a run's files only
    ARTIFACTS.mkdir(parents=True)
    _shots.clear()
    timeline: dict[str, dict[str, float]] = {
        name: {"develop ready": _since(develop)} for name in CLOUDS
    }
    titles: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="en-US"
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        try:
            _log_in(page, develop.url)
            for name, cloud in CLOUDS.items():
                titles[name] = _add(page, name, cloud, develop.sim)
                timeline[name]["added"] = _since(develop)
            for name, cloud in CLOUDS.items():
                _check_values(page, develop, cloud)
                timeline[name]["values"] = _since(develop)
                if name == "climkit":
                    _screenshot(page, "climkit-values", full_page=True)
            for name, cloud in CLOUDS.items():
                _accept_offer(page, develop, titles[name])
                timeline[name]["offer accepted"] = _since(develop)
                _check_dashboard(page, develop, cloud)
                timeline[name]["dashboard"] = _since(develop)
                if name == "climkit":
                    _screenshot(page, "energy-climkit")
            _screenshot(page, "energy-electricity", full_page=True)
            page.goto(f"{develop.url}/energy")  # the Summary tab: every cloud
            _last_30_days(page)
            page.wait_for_timeout(3000)  # the charts draw
            _screenshot(page, "energy-summary")
        except BaseException:
            _screenshot(page, "failure", full_page=True)
            raise
        finally:
            report = _report(timeline)
            (ARTIFACTS / "timeline.txt").write_text(report + "\n")
            (ARTIFACTS / "timeline.json").write_text(json.dumps(timeline, indent=2))
            print(f"\n{report}\nScreenshots: {ARTIFACTS}")  # noqa: T201
            browser.close()

    # The banner stays on screen: the logs went to their files, not after it.
    after_banner = develop.after_banner()
    assert not [line for line in after_banner if line.strip("= ")], after_banner
    assert DOMAIN in (develop.state / "hass.log").read_text(errors="replace")
