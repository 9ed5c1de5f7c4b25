"""Locus Energy discovery against the simulator's hierarchy and dataavailable.

Sites come from the partner, devices from the monitored (not conceptual)
components, channels from what `dataavailable` lists for each component type
and for the site; production statistics only for measured GENERATION energy.
Expectations are written from the simulator's ground truth (its hierarchy and
its dataavailable sets) and from the documented meaning of each base field.
"""

from typing import Any

from aiohttp import web
import pytest

from custom_components.cloud_energy_meters.providers import locus as locus_module
from custom_components.cloud_energy_meters.providers.errors import (
    InvalidResponse,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.locus import (
    LocusProvider,
    component_key,
)
from custom_components.cloud_energy_meters.providers.model import (
    Channel,
    Device,
    Inventory,
    Kind,
    Label,
    Quantity,
    Role,
    Site,
)
from tests.provider_factory import LOCUS_CLIENT_CREDENTIALS, MakeProvider
from tests.simulator import Simulator
from tests.simulator.locus import (
    CEDAR_INVERTER_ID,
    CEDAR_PV_METER_ID,
    CEDAR_SITE_ID,
    COMPONENT_FIELDS,
    DEMO_PARTNER_ID,
    DEMO_USERNAME,
    HARBOR_INVERTER_ID,
    HARBOR_PV_METER_ID,
    HARBOR_SITE_ID,
    MAPLE_ARRAY_GROUP_ID,
    MAPLE_INVERTER_ID,
    MAPLE_NET_METER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
    MAPLE_WEATHER_ID,
    OTHER_PARTNER_ID,
    SimComponent,
    SimSite,
)
from tests.stub import StubServer

SMALL_SITES = (MAPLE_SITE_ID, HARBOR_SITE_ID)
MODEL_REF = (
    "modelType",
    "simple",
    "irradianceSource",
    "weatherStation",
    "inverterClipping",
    "true",
)
# What each documented base field is: label, quantity, unit, wanted by most people.
MEANING: dict[str, tuple[Label, Quantity, str, bool]] = {
    "A": (Label.CURRENT, Quantity.CURRENT, "A", False),
    "Hz": (Label.FREQUENCY, Quantity.FREQUENCY, "Hz", False),
    "PF": (Label.POWER_FACTOR, Quantity.POWER_FACTOR, "", False),
    "PPV": (Label.VOLTAGE_LINE, Quantity.VOLTAGE, "V", False),
    "PhV": (Label.VOLTAGE_PHASE, Quantity.VOLTAGE, "V", False),
    "VA": (Label.APPARENT_POWER, Quantity.APPARENT_POWER, "VA", False),
    "VAR": (Label.REACTIVE_POWER, Quantity.REACTIVE_POWER, "var", False),
    "W": (Label.POWER, Quantity.POWER, "W", True),
    "Wh": (Label.ENERGY, Quantity.ENERGY, "kWh", True),
    "WphA": (Label.PHASE_POWER_A, Quantity.POWER, "W", False),
    "WphB": (Label.PHASE_POWER_B, Quantity.POWER, "W", False),
    "WphC": (Label.PHASE_POWER_C, Quantity.POWER, "W", False),
    "W_m": (Label.MODELED_POWER, Quantity.POWER, "W", False),
    "Wh_m": (Label.MODELED_ENERGY, Quantity.ENERGY, "kWh", False),
    "POA": (Label.IRRADIANCE, Quantity.IRRADIANCE, "W/m²", True),
    "TmpAmb": (Label.AMBIENT_TEMPERATURE, Quantity.TEMPERATURE, "°C", True),
}
SHORT = {"sum": 0, "avg": 1, "max": 2, "min": 3}


def address(site: SimSite) -> str:
    """Return a site's postal address as one line."""
    parts = (
        site.address1,
        site.address2,
        site.locale3,
        f"{site.locale_code1} {site.postal_code}",
        site.country_code,
    )
    return ", ".join(part for part in parts if part)


def expected_site(site: SimSite) -> Site:
    """Return what the provider must make of a simulated site."""
    return Site(
        id=str(site.id),
        name=site.name,
        timezone=site.timezone,
        address=address(site),
        reference=str(site.client_id),
    )


def monitoring_parent(simulator: Simulator, component: SimComponent) -> str | None:
    """Return the device id of the nearest monitored ancestor (None: the site)."""
    while component.parent_type == "COMPONENT":
        component = simulator.locus.component(component.parent_id)
        if not component.is_conceptual:
            return f"component-{component.id}"
    return None


def expected_devices(simulator: Simulator, site_id: int) -> list[Device]:
    """Return the devices of a site: its monitored components, linked to parents."""
    return [
        Device(
            id=f"component-{c.id}",
            site_id=str(site_id),
            name=c.name,
            parent_id=monitoring_parent(simulator, c),
            manufacturer=c.oem,
            model=c.model,
            serial_number=c.serial_number,
            kind=c.node_type,
            alerts=True,
        )
        for c in simulator.locus.components_of(site_id)
        if not c.is_conceptual
    ]


def readable_fields(component: SimComponent) -> dict[str, dict[str, Any]]:
    """Return the shortName to read of each base field that has a recent value.

    A field needs an aggregation (PI_m has none) and a latest or 15-minute value.
    """
    fields: dict[str, dict[str, Any]] = {}
    for entry in COMPONENT_FIELDS[component.role]:
        aggregations = sorted(
            entry.get("aggregations", ()), key=lambda a: SHORT[a["aggregation"]]
        )
        granularities = set(entry["granularities"])
        if aggregations and granularities & {"latest", "15min"}:
            fields[aggregations[0]["shortName"]] = entry
    return fields


def by_key(inventory: Inventory) -> dict[str, Channel]:
    """Index an inventory's channels by key (keys are unique)."""
    channels = {channel.key: channel for channel in inventory.channels}
    assert len(channels) == len(inventory.channels)
    return channels


@pytest.fixture
async def inventory(simulator: Simulator, locus: LocusProvider) -> Inventory:
    """Discover the two small sites of the demo partner."""
    return await locus.async_discover([str(site) for site in SMALL_SITES])


async def test_list_sites(simulator: Simulator, locus: LocusProvider) -> None:
    """The partner's sites, in API order, with address, time zone and client (1 call)."""
    sites = await locus.async_list_sites()
    assert sites == tuple(
        expected_site(site) for site in simulator.locus.sites_of(DEMO_PARTNER_ID)
    )
    assert [r.path for r in simulator.log_for("locus")] == [
        "/oauth/token",
        f"/partners/{DEMO_PARTNER_ID}/sites",
    ]


async def test_discovery_requests(
    simulator: Simulator, inventory: Inventory, locus: LocusProvider
) -> None:
    """1 + 4 per site + 1 per monitored component: conceptual nodes are not asked."""
    expected = ["/oauth/token", f"/partners/{DEMO_PARTNER_ID}/sites"]
    for site_id in SMALL_SITES:
        expected += [
            f"/sites/{site_id}/{what}"
            for what in ("components", "dataavailable", "installinfo", "modelsettings")
        ]
        expected += [
            f"/components/{c.id}/dataavailable"
            for c in simulator.locus.components_of(site_id)
            if not c.is_conceptual
        ]
    log = simulator.log_for("locus")
    assert [r.path for r in log] == expected
    assert all(r.status == 200 for r in log)
    assert f"/components/{MAPLE_ARRAY_GROUP_ID}/dataavailable" not in expected
    assert inventory.account == locus._account


async def test_sites_and_devices(simulator: Simulator, inventory: Inventory) -> None:
    """Sites chosen, sites listed, and devices linked past the conceptual node."""
    assert inventory.sites == tuple(
        expected_site(simulator.locus.site(site)) for site in SMALL_SITES
    )
    assert inventory.listed == tuple(
        str(site.id) for site in simulator.locus.sites_of(DEMO_PARTNER_ID)
    )
    assert list(inventory.devices) == [
        device for site in SMALL_SITES for device in expected_devices(simulator, site)
    ]
    devices = {device.id: device for device in inventory.devices}
    assert f"component-{MAPLE_ARRAY_GROUP_ID}" not in devices
    # Maple's inverter hangs below the conceptual array group, itself below the
    # PV meter: the device's parent is the meter. Harbor's inverter is directly below.
    assert devices[f"component-{MAPLE_INVERTER_ID}"].parent_id == (
        f"component-{MAPLE_PV_METER_ID}"
    )
    assert devices[f"component-{HARBOR_INVERTER_ID}"].parent_id == (
        f"component-{HARBOR_PV_METER_ID}"
    )
    assert devices[f"component-{MAPLE_NET_METER_ID}"].parent_id is None
    assert not set(devices) & {str(site) for site in SMALL_SITES}


async def test_component_channels(simulator: Simulator, inventory: Inventory) -> None:
    """Each component's channels are its readable dataavailable fields, nothing more.

    Power and energy (and the weather station's irradiance and temperature) are
    common; currents, voltages, frequency, power factor, apparent, reactive and
    phase powers and modeled values are not. PI_m (no aggregation) is absent.
    Measured values are read with `gran=latest`, modeled ones in a recent
    15-minute window with their field parameters.
    """
    channels = by_key(inventory)
    seen: set[str] = set()
    for site_id in SMALL_SITES:
        for component in simulator.locus.components_of(site_id):
            fields = {} if component.is_conceptual else readable_fields(component)
            for short, entry in fields.items():
                key = f"{site_id}:component:{component.id}:{short}"
                channel = channels[key]
                seen.add(key)
                label, quantity, unit, common = MEANING[entry["baseField"]]
                modeled = entry["source"] == "Modeled"
                assert (channel.label, channel.quantity, channel.unit) == (
                    label,
                    quantity,
                    unit,
                ), key
                assert channel.common is common, key
                assert channel.kind is (
                    Kind.INTERVAL if quantity is Quantity.ENERGY else Kind.INSTANT
                )
                assert channel.site_id == str(site_id)
                assert channel.device_id == f"component-{component.id}"
                assert (channel.source, channel.source_id) == (
                    component.name,
                    str(component.id),
                )
                assert channel.role is (
                    Role.PRODUCTION
                    if component.application == "GENERATION"
                    else Role.MEASUREMENT
                )
                assert channel.ref == (
                    ("component", str(component.id), "15min", short, *MODEL_REF)
                    if modeled
                    else ("component", str(component.id), "latest", short)
                ), key
                assert channel.attributes == {
                    "field": short,
                    "source": entry["source"],
                }
    component_keys = {k for k, c in channels.items() if c.device_id is not None}
    assert component_keys == seen
    assert not [key for key in channels if "PI_m" in key]
    group = f"component-{MAPLE_ARRAY_GROUP_ID}"
    assert not [c for c in inventory.channels if c.device_id == group]


async def test_weather_station_channels(inventory: Inventory) -> None:
    """The weather station gives irradiance (W/m²) and temperature (°C), no statistic."""
    station = [
        c for c in inventory.channels if c.device_id == f"component-{MAPLE_WEATHER_ID}"
    ]
    assert [(c.label, c.unit, c.common, c.statistic) for c in station] == [
        (Label.IRRADIANCE, "W/m²", True, None),
        (Label.AMBIENT_TEMPERATURE, "°C", True, None),
    ]
    assert not any(c.history for c in station)


async def test_production_statistics(
    simulator: Simulator, inventory: Inventory
) -> None:
    """Only measured GENERATION energy makes statistics: meters, inverters, sites.

    Not the NET-GRID meter, not the weather station, not modeled energy.
    """
    statistics = {
        c.key: c.statistic for c in inventory.channels if c.statistic is not None
    }
    expected: dict[str, str] = {}
    for site_id in SMALL_SITES:
        expected[f"{site_id}:site:{site_id}:Wh_sum"] = f"{site_id}_production"
        for component in simulator.locus.components_of(site_id):
            if component.application == "GENERATION" and component.has_energy:
                expected[f"{site_id}:component:{component.id}:Wh_sum"] = (
                    f"{site_id}_{component.id}_production"
                )
    assert statistics == expected
    assert f"{MAPLE_SITE_ID}:component:{MAPLE_NET_METER_ID}:Wh_sum" not in statistics
    for channel in inventory.channels:
        assert channel.history is (channel.statistic is not None)
        if channel.statistic is not None:
            assert (channel.unit, channel.kind) == ("kWh", Kind.INTERVAL)
            assert channel.role is Role.PRODUCTION


async def test_site_channels(inventory: Inventory) -> None:
    """A site has power and energy (its production statistic) and modeled values.

    Wh_e (expected energy, daily only) and the hourly irradiance fields have no
    recent value: no channel. Site data has no `latest`: 15-minute windows.
    """
    channels = by_key(inventory)
    for site_id in SMALL_SITES:
        own = {
            key.rsplit(":", 1)[-1]: channel
            for key, channel in channels.items()
            if key.startswith(f"{site_id}:site:")
        }
        assert set(own) == {"W_avg", "Wh_sum", "W_m_avg", "Wh_m_sum"}
        assert [
            (short, c.label, c.unit, c.common, c.device_id)
            for short, c in sorted(own.items())
        ] == [
            ("W_avg", Label.SITE_POWER, "W", True, None),
            ("W_m_avg", Label.SITE_MODELED_POWER, "W", False, None),
            ("Wh_m_sum", Label.SITE_MODELED_ENERGY, "kWh", False, None),
            ("Wh_sum", Label.SITE_ENERGY, "kWh", True, None),
        ]
        assert own["Wh_sum"].statistic == f"{site_id}_production"
        assert own["W_avg"].ref == ("site", str(site_id), "15min", "W_avg")
        assert own["W_m_avg"].ref == (
            "site",
            str(site_id),
            "15min",
            "W_m_avg",
            *MODEL_REF,
        )


async def test_facts(simulator: Simulator, inventory: Inventory) -> None:
    """System size (kW, modelsettings) and installer and dates (installinfo) are facts."""
    for site_id in SMALL_SITES:
        site = simulator.locus.site(site_id)
        facts = {
            c.key.rsplit(":", 1)[-1]: c
            for c in inventory.channels
            if c.site_id == str(site_id) and c.kind is Kind.FACT
        }
        assert {key: c.fact for key, c in facts.items()} == {
            "size": site.size_kw,
            "installer": site.installer,
            "installDate": site.install_date,
            "ptoDate": site.pto_date,
            "startupDate": site.startup_date,
        }
        assert (facts["size"].label, facts["size"].unit) == (Label.SYSTEM_SIZE, "kW")
        assert facts["installer"].quantity is Quantity.TEXT
        assert facts["installDate"].quantity is Quantity.DATE
        assert all(c.device_id is None and not c.history for c in facts.values())


async def test_other_partner(simulator: Simulator, make_provider: MakeProvider) -> None:
    """The same user with the other partner id sees that partner's site only.

    Cedar Lane has no size in its model settings and only an installer.
    """
    provider = make_provider("locus", partner_id=OTHER_PARTNER_ID)
    cedar = simulator.locus.site(CEDAR_SITE_ID)
    assert await provider.async_list_sites() == (expected_site(cedar),)
    inventory = await provider.async_discover([str(CEDAR_SITE_ID)])
    assert inventory.account.id == f"{OTHER_PARTNER_ID}:{DEMO_USERNAME}"
    assert inventory.listed == (str(CEDAR_SITE_ID),)
    assert list(inventory.devices) == expected_devices(simulator, CEDAR_SITE_ID)
    assert {
        c.key.rsplit(":", 1)[-1]: c.fact
        for c in inventory.channels
        if c.kind is Kind.FACT
    } == {"installer": cedar.installer}
    assert {c.statistic for c in inventory.channels if c.statistic} == {
        f"{CEDAR_SITE_ID}_production",
        f"{CEDAR_SITE_ID}_{CEDAR_PV_METER_ID}_production",
        f"{CEDAR_SITE_ID}_{CEDAR_INVERTER_ID}_production",
    }


@pytest.mark.parametrize(
    ("partner_id", "client_credentials", "status"),
    [(9999, False, 404), (OTHER_PARTNER_ID, True, 403)],
    ids=["unknown-partner", "forbidden-partner"],
)
async def test_wrong_partner(
    simulator: Simulator,
    make_provider: MakeProvider,
    partner_id: int,
    client_credentials: bool,
    status: int,
) -> None:
    """A partner the cloud does not know (404) or forbids (403) is RequestRejected."""
    provider = make_provider(
        "locus",
        partner_id=partner_id,
        **(LOCUS_CLIENT_CREDENTIALS if client_credentials else {}),
    )
    with pytest.raises(RequestRejected) as caught:
        await provider.async_list_sites()
    assert caught.value.status == status
    with pytest.raises(RequestRejected):
        await provider.async_discover([str(CEDAR_SITE_ID)])
    assert [(r.path, r.status) for r in simulator.log_for("locus")] == [
        ("/oauth/token", 200),
        (f"/partners/{partner_id}/sites", status),
        (f"/partners/{partner_id}/sites", status),
    ]


async def test_unknown_site_ids_are_skipped(
    simulator: Simulator, locus: LocusProvider
) -> None:
    """Sites the partner no longer has are left out, without a request of their own."""
    inventory = await locus.async_discover(["999", str(CEDAR_SITE_ID)])
    assert inventory.sites == ()
    assert inventory.channels == ()
    assert inventory.devices == ()
    assert len(inventory.listed) == len(simulator.locus.sites_of(DEMO_PARTNER_ID))
    assert [r.path for r in simulator.log_for("locus")] == [
        "/oauth/token",
        f"/partners/{DEMO_PARTNER_ID}/sites",
    ]


# Payloads the simulator never sends ------------------------------------------------


def serve_site(
    stub: StubServer,
    fields: list[dict[str, Any]],
    info: Any = None,
    settings: Any = None,
) -> None:
    """Serve a partner with site 1 holding component 2, whose dataavailable is `fields`."""
    stub.locus_auth()
    stub.json("GET", "/v3/partners/7/sites", {"sites": [{"id": 1, "name": "One"}]})
    stub.json(
        "GET",
        "/v3/sites/1/components",
        {
            "components": [
                {"id": 2, "parentId": 1, "parentType": "SITE", "application": "X"},
                # Conceptual, pointing at a parent the site does not list.
                {
                    "id": 3,
                    "parentId": 99,
                    "parentType": "COMPONENT",
                    "isConceptualNode": True,
                },
                {"id": 4, "parentId": 3, "parentType": "COMPONENT"},
            ]
        },
    )
    stub.json("GET", "/v3/sites/1/dataavailable", {"baseFields": []})
    stub.json("GET", "/v3/sites/1/installinfo", {} if info is None else info)
    stub.json("GET", "/v3/sites/1/modelsettings", {} if settings is None else settings)
    stub.json("GET", "/v3/components/2/dataavailable", {"baseFields": fields})
    stub.json("GET", "/v3/components/4/dataavailable", {"baseFields": []})


def stub_provider(make_provider: MakeProvider, stub: StubServer) -> LocusProvider:
    """Return a provider of partner 7 talking to the stub."""
    return make_provider("locus", api_url=f"{stub.url}/v3", partner_id=7)


def field(base: str, unit: str, *aggregations: str, **extra: Any) -> dict[str, Any]:
    """Return a baseField object readable at latest and 15 minutes."""
    return {
        "baseField": base,
        "unit": unit,
        "aggregations": [
            {"shortName": f"{base}_{a}", "aggregation": a} for a in aggregations
        ],
        "granularities": ["latest", "15min"],
        **extra,
    }


async def test_unknown_fields_keep_the_clouds_name(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A field this module does not know is shown under the cloud's name, disabled.

    Its unit is normalised when known (V), kept as is otherwise (kPa). Fields
    without aggregations, daily-only fields and a minimal component (no name,
    no application, parent past a dangling conceptual node) are handled too.
    """
    serve_site(
        stub,
        [
            field("DCV", "V", "max", "min", longName="DC Voltage"),
            field("Press", "kPa", "min"),
            field("Nothing", "W"),
            field("Daily", "Wh", "sum") | {"granularities": ["daily"]},
            field("Wh", "Wh", "sum", source="Expected"),
        ],
        info={"installer": "", "installDate": "soon", "ptoDate": 20240101},
        settings={"size": True},
    )
    inventory = await stub_provider(make_provider, stub).async_discover(["1"])
    assert [d.id for d in inventory.devices] == ["component-2", "component-4"]
    assert [d.parent_id for d in inventory.devices] == [None, None]
    assert inventory.devices[0].name == "2"
    # No fact: an empty installer, dates that are no dates, a size that is no number.
    channels = {c.key: c for c in inventory.channels}
    assert set(channels) == {
        "1:component:2:DCV_max",
        "1:component:2:Press_min",
        "1:component:2:Wh_sum",
    }
    dcv = channels["1:component:2:DCV_max"]
    assert (dcv.label, dcv.quantity, dcv.unit, dcv.common) == (
        None,
        Quantity.OTHER,
        "V",
        False,
    )
    assert dcv.name == "DC Voltage"
    assert channels["1:component:2:Press_min"].unit == "kPa"
    # Expected (not measured) energy is no statistic and not common.
    expected = channels["1:component:2:Wh_sum"]
    assert (expected.statistic, expected.common, expected.role) == (
        None,
        False,
        Role.MEASUREMENT,
    )


@pytest.mark.parametrize(
    ("fields", "info", "settings"),
    [
        ([], [], None),
        ([], None, "size"),
    ],
    ids=["installinfo-not-an-object", "modelsettings-not-an-object"],
)
async def test_malformed_discovery_answers(
    stub: StubServer,
    make_provider: MakeProvider,
    fields: list[dict[str, Any]],
    info: Any,
    settings: Any,
) -> None:
    """Answers the document does not allow raise InvalidResponse."""
    serve_site(stub, fields, info=info, settings=settings)
    if fields:  # the component's dataavailable is the broken one
        stub.json("GET", "/v3/sites/1/dataavailable", {"baseFields": fields})
    with pytest.raises(InvalidResponse):
        await stub_provider(make_provider, stub).async_discover(["1"])


async def test_site_ids_must_be_ids(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """Sites without a usable id are left out; one listed twice is listed once."""
    stub.locus_auth()

    async def sites(_: web.Request) -> web.Response:
        return web.json_response(
            {"sites": [{"id": True}, 3, {"id": 1.5}, {"id": 4}, {"id": "4"}]}
        )

    stub.on("GET", "/v3/partners/7/sites", sites)
    provider = stub_provider(make_provider, stub)
    assert [site.id for site in await provider.async_list_sites()] == ["4"]
    assert provider.refusals.total == 4


async def test_a_field_without_base_field_is_left_out(
    stub: StubServer, make_provider: MakeProvider
) -> None:
    """A dataavailable entry without baseField is left out, the others kept."""
    serve_site(stub, [{"unit": "W"}])
    provider = stub_provider(make_provider, stub)
    inventory = await provider.async_discover(["1"])
    assert inventory.sites
    assert provider.refusals.total >= 1


async def test_a_runaway_component_list_is_cut(
    stub: StubServer, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each component costs a request: beyond MAX_DEVICES a site's list is cut, said so.

    (The bound is lowered to 3 here; it is 1,000 in use.)
    """
    monkeypatch.setattr(locus_module, "MAX_DEVICES", 3)
    serve_site(stub, [])
    components = [
        {"id": n, "parentId": 1, "parentType": "SITE", "application": "X"}
        for n in range(10, 16)
    ]
    stub.json("GET", "/v3/sites/1/components", {"components": components * 2})
    for n in range(10, 16):
        stub.json("GET", f"/v3/components/{n}/dataavailable", {"baseFields": []})
    provider = stub_provider(make_provider, stub)
    inventory = await provider.async_discover(["1", "1"])
    assert [device.id for device in inventory.devices] == [
        component_key(str(n)) for n in (10, 11, 12)
    ]
    assert inventory.truncated
    asked = [p for _, p, _ in stub.requests if p.endswith("/dataavailable")]
    assert asked == ["/v3/sites/1/dataavailable"] + [
        f"/v3/components/{n}/dataavailable" for n in (10, 11, 12)
    ]
