"""A FlexMeasures entry in Home Assistant, against a real FlexMeasures server.

Devices per asset (children under their parent), a sensor per FlexMeasures sensor with
the right device class, state class and unit, and hourly statistics per direction
equal to what the server holds, summed by hand, across the DST change.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiohttp import ClientSession
import pytest

from custom_components.cloud_energy_meters.const import CONF_BACKFILL_DAYS, DOMAIN
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import slugify
from tests.conftest import SetupEntry
from tests.flexmeasures_real import FlexMeasuresServer
from tests.helpers import stored

from .entries import BATTERY, HOUSE, flexmeasures_entry, server_id, site_id
from .test_provider_real import raw_values

pytestmark = [
    pytest.mark.usefixtures("loopback", "entity_registry_enabled_by_default"),
]
QUARTER = timedelta(minutes=15)


def _entity(hass: HomeAssistant, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"flexmeasures:{unique_id}"
    )
    assert entity_id, unique_id
    return entity_id


async def test_devices_and_entities_of_the_demo_house(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """The house is a device, its battery a device under it; sensors as they are."""
    server = flexmeasures_real
    entry = flexmeasures_entry(server)
    assert await setup_entry(entry)
    devices = dr.async_get(hass)
    house = devices.async_get_device_by_identifier(
        (DOMAIN, site_id(server)), entry.entry_id
    )
    assert house is not None
    assert (house.name, house.model) == (HOUSE, "building")
    battery = devices.async_get_device_by_identifier(
        (DOMAIN, f"{server_id(server.url)}:{server.assets[BATTERY]}"), entry.entry_id
    )
    assert battery is not None
    assert battery.via_device_id == house.id
    ident = server_id(server.url)

    def sensor(asset: str, name: str, way: str = "") -> str:
        key = f"{ident}:{server.sensor(asset, name)}"
        return _entity(hass, f"{key}:{way}" if way else key)

    grid = hass.states.get(sensor(HOUSE, "grid power"))
    assert grid is not None
    assert grid.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.POWER
    assert grid.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert grid.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kW"
    now = datetime.now(UTC)
    recent = await raw_values(
        session,
        server,
        server.sensor(HOUSE, "grid power"),
        now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1),
        now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
        "kW",
    )
    assert float(grid.state) in [v for v in recent if v is not None]
    price = hass.states.get(sensor(HOUSE, "day-ahead price"))
    assert price is not None
    # Usable as the Energy dashboard's "entity with the current price".
    assert price.attributes[ATTR_UNIT_OF_MEASUREMENT] == "EUR/kWh"
    assert price.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert ATTR_DEVICE_CLASS not in price.attributes
    soc = hass.states.get(sensor(BATTERY, "state of charge"))
    assert soc is not None
    assert soc.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.BATTERY
    assert er.async_get(hass).async_get(
        sensor(BATTERY, "state of charge")
    ).device_id == (battery.id)
    imported = hass.states.get(sensor(HOUSE, "grid power", "in"))
    assert imported is not None
    assert imported.name == f"{HOUSE} Grid energy import"
    assert imported.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kWh"
    assert "state_class" not in imported.attributes  # its history is the statistic


async def test_hourly_statistics_equal_the_server_across_dst(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    session: ClientSession,
    flexmeasures_real: FlexMeasuresServer,
) -> None:
    """Each direction's stored hours equal the server's values summed by hand.

    The window holds the most recent DST change in Europe/Amsterdam (a 23- or
    25-hour local day) and a null hour, which stays absent.
    """
    server = flexmeasures_real
    start, end = server.dst.start.astimezone(UTC), server.dst.end.astimezone(UTC)
    days = (datetime.now(UTC) - start).days + 2
    assert await setup_entry(
        flexmeasures_entry(server, options={CONF_BACKFILL_DAYS: days})
    )
    ident = server_id(server.url)
    for name, unit, per_step in (("grid power", "kW", Decimal("0.25")),):
        sensor = server.sensor(HOUSE, name)
        values = await raw_values(session, server, sensor, start, end, unit)
        for way, sign in (("in", 1), ("out", -1)):
            truth: dict[datetime, Decimal] = {}
            for index, value in enumerate(values):
                if value is None:
                    continue
                hour = (start + index * QUARTER).replace(minute=0)
                amount = max(Decimal(0), sign * Decimal(repr(value * float(per_step))))
                truth[hour] = truth.get(hour, Decimal(0)) + amount
            statistic = f"{DOMAIN}:{slugify(f'flexmeasures_{ident}_{sensor}_{way}')}"
            rows = {
                hour: row
                for hour, row in (await stored(hass, statistic)).items()
                if start <= hour < end
            }
            assert sorted(rows) == sorted(truth), statistic
            assert server.dst.null_hour.astimezone(UTC) not in rows
            for hour, value in truth.items():
                assert rows[hour][0] == float(value), (statistic, hour)
            hours = sorted(rows)
            for before, after in zip(hours, hours[1:], strict=False):
                assert rows[after][1] - rows[before][1] == pytest.approx(
                    rows[after][0], abs=1e-9
                )
