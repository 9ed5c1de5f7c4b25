"""Each entry shows how far its history import has come: 0, rising, 100 when done."""

from datetime import UTC, datetime, timedelta
import math

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.cloud_energy_meters.const import (
    CONF_BACKFILL_DAYS,
    DOMAIN,
    STATISTICS_INTERVAL,
)
from custom_components.cloud_energy_meters.progress import ImportProgress
from homeassistant.const import EVENT_STATE_CHANGED, PERCENTAGE, EntityCategory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from tests.conftest import SetupEntry
from tests.helpers import hour, settle, stored
from tests.simulator import Simulator
from tests.simulator.locus import (
    HARBOR_INVERTER_ID,
    HARBOR_PV_METER_ID,
    HARBOR_SITE_ID,
    MAPLE_INVERTER_ID,
    MAPLE_PV_METER_ID,
    MAPLE_SITE_ID,
)

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)
STATISTICS = [
    f"{DOMAIN}:locus_{site}{f'_{component}' if component else ''}_production"
    for site, component in (
        (MAPLE_SITE_ID, None),
        (MAPLE_SITE_ID, MAPLE_PV_METER_ID),
        (MAPLE_SITE_ID, MAPLE_INVERTER_ID),
        (HARBOR_SITE_ID, None),
        (HARBOR_SITE_ID, HARBOR_PV_METER_ID),
        (HARBOR_SITE_ID, HARBOR_INVERTER_ID),
    )
]


async def test_the_history_import_sensor_follows_what_the_recorder_holds(
    hass: HomeAssistant,
    simulator: Simulator,
    locus_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """0 before the import, rising as statistics fill, 100 once all hold their days.

    Harbor View's inverter answers garbage twice (its latest value, then its
    history): the first round stores the five other statistics and the sensor
    says 83 %, as what the recorder holds says; the next round completes it.
    """
    seen: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) and new.entity_id.endswith(
            "_history_import"
        ):
            seen.append(new.state)

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    simulator.faults.add(
        "malformed_json",
        2,
        cloud="locus",
        path=f"/components/{HARBOR_INVERTER_ID}/data$",
    )
    assert locus_entry.options[CONF_BACKFILL_DAYS] == 3

    assert await setup_entry(locus_entry)

    entity_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"locus:{MAPLE_SITE_ID}:history_import"
    )
    assert entity_id == "sensor.maple_street_residence_history_import"
    entry = entity_registry.async_get(entity_id)
    assert entry is not None
    assert entry.entity_category is EntityCategory.DIAGNOSTIC
    assert entry.disabled_by is None
    held = {statistic: await stored(hass, statistic) for statistic in STATISTICS}
    complete = [statistic for statistic, rows in held.items() if rows]
    assert len(complete) == 5  # the inverter's history was refused
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == str(math.floor(100 * len(complete) / len(STATISTICS)))
    assert state.state == "83"
    assert state.attributes["unit_of_measurement"] == PERCENTAGE
    assert state.attributes["statistics"] == 6
    assert state.attributes["statistics_imported"] == 5
    for statistic in complete:  # each holds its three days
        assert min(held[statistic]) == hour(NOW - timedelta(days=3))
    assert seen[0] == "0"
    assert [int(value) for value in seen] == sorted(int(value) for value in seen)
    assert len(set(seen)) >= 4  # it rose step by step

    simulator.faults.clear()
    later = NOW + STATISTICS_INTERVAL + timedelta(minutes=5)
    freezer.move_to(later)
    async_fire_time_changed(hass, later)
    await settle(hass)

    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "100"
    assert state.attributes["statistics_imported"] == 6
    now = datetime.now(UTC)
    for statistic in STATISTICS:
        rows = await stored(hass, statistic)
        assert min(rows) <= hour(later - timedelta(days=3))  # its three days
        assert max(rows) >= hour(now) - timedelta(hours=1)


def test_progress_counts_the_backfill_span_covered() -> None:
    """A statistic counts the share of its span stored; 1 only once it finished."""
    progress = ImportProgress()
    assert progress.percent == 100  # nothing to import
    progress.expect(["a", "b"])
    assert progress.percent == 0
    now, backfill = NOW, timedelta(days=4)
    progress.reached("a", NOW - timedelta(days=2), now=now, backfill=backfill)
    assert progress.percent == 25
    progress.reached("a", NOW + timedelta(hours=1), now=now, backfill=backfill)
    assert progress.percent == 49  # all its span, but not finished
    progress.reached("a", NOW - timedelta(days=3), now=now, backfill=backfill)
    assert progress.percent == 49  # never back
    progress.finished("a")
    progress.finished("b")
    assert (progress.percent, progress.done) == (100, 2)
