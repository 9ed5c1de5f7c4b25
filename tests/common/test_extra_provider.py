"""A cloud added with nothing but its provider: the generic layer serves it whole.

MeterCo is a small cloud written here, with a small server of its own on loopback.
It is registered in PROVIDERS, as a new cloud's module would be, and nothing else
changes: the config flow offers it, signs in and chooses its sites; its sites become
devices and its meters entities; its history lands in long-term statistics.
"""

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, override

from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.providers import PROVIDERS, Provider
from custom_components.cloud_energy_meters.providers.contract import (
    MAX_CHANNELS,
    MAX_SITES,
)
from custom_components.cloud_energy_meters.providers.errors import AuthError
from custom_components.cloud_energy_meters.providers.form import Field, Form
from custom_components.cloud_energy_meters.providers.model import (
    Account,
    Channel,
    Interval,
    Inventory,
    Kind,
    Label,
    Latest,
    Quantity,
    Reading,
    Role,
    Site,
)
from custom_components.cloud_energy_meters.providers.ratelimit import RatePolicy
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from tests.helpers import stored

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TOKEN = "meterco-token"  # noqa: S105
SITES = {"north": "North Farm", "south": "South Barn"}
QUARTER = timedelta(minutes=15)
EXTRA_SITES = web.AppKey("extra_sites", list[int])
"""How many sites the server lists beyond SITES (a runaway answer, when many)."""


def kwh(site: str, start: datetime) -> float:
    """Return the energy (kWh) a site's meter counted in the quarter from `start`."""
    return round(0.25 + (start.hour % 5) * 0.1 + (0.05 if site == "south" else 0), 3)


def _meterco_app() -> web.Application:
    """Serve MeterCo's API: sites, each site's latest reading and its history."""

    def authorised(request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            raise web.HTTPUnauthorized

    async def sites(request: web.Request) -> web.Response:
        authorised(request)
        extra = {f"x{n}": f"Extra {n}" for n in range(request.app[EXTRA_SITES][0])}
        return web.json_response(
            [{"id": k, "name": v} for k, v in (SITES | extra).items()]
        )

    async def history(request: web.Request) -> web.Response:
        authorised(request)
        site = request.match_info["site"]
        start = datetime.fromisoformat(request.query["from"])
        end = datetime.fromisoformat(request.query["to"])
        rows = []
        moment = start
        while moment + QUARTER <= end:  # quarters that ended
            rows.append({"start": moment.isoformat(), "kwh": kwh(site, moment)})
            moment += QUARTER
        return web.json_response(rows)

    app = web.Application()
    app[EXTRA_SITES] = [0]
    app.router.add_get("/sites", sites)
    app.router.add_get("/sites/{site}/history", history)
    return app


class MeterCoProvider(Provider):
    """A small cloud: sites with one energy meter each, quarter-hour history."""

    key = "meterco"
    name = "MeterCo"
    default_url = "https://api.meterco.example"
    policy = RatePolicy()
    form = Form(fields=(Field("api_token", secret=True),))
    max_history_days = 30

    @classmethod
    @override
    def account_key(cls, api_url: str, credentials: Any) -> str:
        return f"{cls.key}:{api_url}"

    async def _get(self, path: str, **params: str) -> Any:
        async with self.session.get(
            f"{self.api_url}{path}",
            params=params,
            headers={"Authorization": f"Token {self.credentials['api_token']}"},
        ) as response:
            if response.status == 401:
                raise AuthError("MeterCo refused the token")
            response.raise_for_status()
            return await response.json()

    @override
    async def async_login(self) -> Account:
        await self._get("/sites")
        return Account(id="acme", name="Acme")

    @override
    async def _list_sites(self) -> tuple[Site, ...]:
        return tuple(
            Site(id=s["id"], name=s["name"]) for s in await self._get("/sites")
        )

    @override
    async def _discover(self, site_ids: Sequence[str]) -> Inventory:
        listed = await self.async_list_sites()
        sites = [s for s in listed if s.id in site_ids]
        channels = tuple(
            Channel(
                key=f"{site.id}:energy",
                site_id=site.id,
                name="Meter energy",
                label=Label.INTERVAL_ENERGY,
                quantity=Quantity.ENERGY,
                kind=Kind.INTERVAL,
                unit="kWh",
                role=Role.CONSUMPTION,
                source="Meter",
                history=True,
                statistic=f"{site.id}_meter_energy",
            )
            for site in sites
        )
        return Inventory(
            account=Account(id="acme", name="Acme"),
            sites=tuple(sites),
            channels=channels,
            listed=tuple(site.id for site in listed),
        )

    @override
    async def _latest(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> Latest:
        start = datetime.now(UTC).replace(second=0, microsecond=0) - QUARTER
        start -= timedelta(minutes=start.minute % 15)
        return Latest(
            readings={
                c.key: Reading(kwh(c.site_id, start), start + QUARTER, start)
                for c in channels
            }
        )

    @override
    async def _history(
        self, channel: Channel, start: datetime, end: datetime
    ) -> AsyncIterator[list[Interval]]:
        rows = await self._get(
            f"/sites/{channel.site_id}/history",
            **{"from": start.isoformat(), "to": end.isoformat()},
        )
        yield [
            Interval(begin, begin + QUARTER, row["kwh"])
            for row in rows
            if (begin := datetime.fromisoformat(row["start"])) < end
        ]

    @override
    def refresh_cost(
        self, channels: Sequence[Channel], sites: Sequence[str] = ()
    ) -> int:
        return 0


@pytest.fixture
async def meterco_server(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TestServer]:
    """Serve MeterCo on loopback and register its provider."""
    server = TestServer(_meterco_app(), host="127.0.0.1")
    await server.start_server()
    monkeypatch.setitem(PROVIDERS, MeterCoProvider.key, MeterCoProvider)
    yield server
    await server.close()


@pytest.fixture
def meterco(meterco_server: TestServer) -> str:
    """Return MeterCo's API URL."""
    return str(meterco_server.make_url("")).rstrip("/")


@pytest.mark.freeze_time(NOW, tick=True)
async def test_a_cloud_added_with_its_provider_alone(
    hass: HomeAssistant, recorder_mock: Any, meterco: str
) -> None:
    """Menu, sign-in form, sites, devices, entities and statistics: all generic."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert "meterco" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "meterco"}
    )
    assert result["step_id"] == "meterco"
    assert [str(key) for key in result["data_schema"].schema] == [
        "api_token",
        "advanced",
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_token": "wrong", "advanced": {"api_url": meterco}}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_token": TOKEN, "advanced": {"api_url": meterco}}
    )
    assert result["step_id"] == "sites"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"sites": list(SITES)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.title == "MeterCo Acme"
    assert entry.unique_id == "meterco_acme"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED

    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert {device.name for device in devices} == set(SITES.values())
    for site in SITES:
        state = hass.states.get(
            f"sensor.{site}_{'farm' if site == 'north' else 'barn'}_energy_last_interval"
        )
        assert state is not None, site
        rows = await stored(hass, f"{DOMAIN}:meterco_{site}_meter_energy")
        # A month of history (the provider's window is 30 days, the backfill 30).
        assert len(rows) == 30 * 24
        first = min(rows)
        expected = sum(kwh(site, first + i * QUARTER) for i in range(4))
        assert rows[first][0] == pytest.approx(expected)
        assert rows[max(rows)][1] == pytest.approx(
            sum(state for state, _ in rows.values())
        )


@pytest.mark.freeze_time(NOW, tick=True)
async def test_a_runaway_site_list_is_cut_with_a_repair_issue(
    hass: HomeAssistant,
    recorder_mock: Any,
    meterco_server: TestServer,
    meterco: str,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A cloud listing more than MAX_SITES sites: the rest is left out, and said so.

    The entry still loads with the sites it chose; a repair issue tells the user,
    and goes once the cloud's list fits again.
    """
    meterco_server.app[EXTRA_SITES][0] = MAX_SITES
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id="meterco_acme",
        title="MeterCo Acme",
        data={
            CONF_PROVIDER: "meterco",
            CONF_API_URL: meterco,
            "api_token": TOKEN,
            CONF_SITES: ["north"],
            # Seen in the flow and left out: none of them joins on its own.
            CONF_KNOWN_SITES: [*SITES, *(f"x{n}" for n in range(MAX_SITES))],
        },
        options={CONF_BACKFILL_DAYS: 1},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    issue_id = f"listing_truncated_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "listing_truncated"
    assert issue.translation_placeholders == {
        "entry": "MeterCo Acme",
        "sites": str(MAX_SITES),
        "channels": str(MAX_CHANNELS),
    }
    meterco_server.app[EXTRA_SITES][0] = 3
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
