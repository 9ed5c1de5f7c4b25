"""What users see when the cloud misbehaves: no crash, clear logs, nothing lost."""

from datetime import UTC, datetime, timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from tests.conftest import SetupEntry
from tests.helpers import assert_matches_truth, expected_series, hour, stored
from tests.simulator import Simulator
from tests.simulator.climkit import SITE_LAC

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


def _sensor_states(hass: HomeAssistant) -> list[str]:
    """Return the states of the sensors of the cloud's values.

    Not the History import sensor's: it stays available while the cloud fails.
    """
    return [
        state.state
        for state in hass.states.async_all("sensor")
        if not state.entity_id.endswith("_history_import")
    ]


def _auth_requests(simulator: Simulator) -> int:
    return sum(1 for r in simulator.log_for("climkit") if r.path == "/auth")


async def test_expired_token_is_renewed_silently(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Tokens last 15 minutes: a refresh later logs in again before using one."""
    assert await setup_entry(climkit_entry)
    logins = _auth_requests(simulator)
    freezer.tick(timedelta(minutes=16))
    await climkit_entry.runtime_data.async_refresh()
    assert climkit_entry.runtime_data.last_update_success
    assert _auth_requests(simulator) == logins + 1
    assert not any(r.status == 401 for r in simulator.log_for("climkit"))
    assert not hass.config_entries.flow.async_progress()


async def test_refused_token_is_renewed_silently(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A token the cloud stops accepting is replaced without bothering the user."""
    assert await setup_entry(climkit_entry)
    logins = _auth_requests(simulator)
    simulator.faults.add("http_401", count=1, cloud="climkit", path="meter_data")
    await climkit_entry.runtime_data.async_refresh()
    assert climkit_entry.runtime_data.last_update_success
    assert _auth_requests(simulator) == logins + 1
    assert STATE_UNAVAILABLE not in _sensor_states(hass)
    assert not hass.config_entries.flow.async_progress()


async def test_revoked_credentials_start_reauth(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """When the password itself is refused, the user is asked to sign in again."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.revoke("demo")
    await climkit_entry.runtime_data.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert all(state == STATE_UNAVAILABLE for state in _sensor_states(hass))


async def test_revoked_credentials_at_startup_start_reauth(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Refused credentials during setup fail the entry into reauthentication."""
    simulator.climkit.revoke("demo")
    assert not await setup_entry(climkit_entry)
    assert climkit_entry.state is ConfigEntryState.SETUP_ERROR
    assert [
        f["context"]["source"] for f in hass.config_entries.flow.async_progress()
    ] == [SOURCE_REAUTH]


@pytest.mark.parametrize("kind", ["http_500", "timeout", "malformed_json"])
async def test_failures_make_entities_unavailable_then_recover(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """A failing refresh: unavailable, logged once; the next good one: back, logged once."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    coordinator.provider._transport.timeout = 0.3
    simulator.faults.timeout_seconds = 2
    caplog.clear()
    simulator.faults.add(kind, count=2, cloud="climkit", path="^/meter_data/")
    await coordinator.async_refresh()
    assert set(_sensor_states(hass)) == {STATE_UNAVAILABLE}
    await coordinator.async_refresh()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert "Climkit" in message
    assert "Traceback" not in message
    await coordinator.async_refresh()
    assert STATE_UNAVAILABLE not in _sensor_states(hass)
    assert sum("recovered" in r.getMessage() for r in caplog.records) == 1
    assert climkit_entry.state is ConfigEntryState.LOADED


async def test_broken_rows_fail_no_refresh(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows without their timestamps or values: left out, logged once; no 0, no error."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    before = _sensor_states(hass)
    caplog.clear()
    simulator.faults.add(
        "missing_fields", count=1000, cloud="climkit", path="^/meter_data/"
    )
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    left_out = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(left_out) == 1
    assert left_out[0].startswith("Climkit sent data that was left out: ")
    after = _sensor_states(hass)
    # A value the rows no longer carry is unknown, never a made-up 0.
    assert all(
        now in (then, STATE_UNKNOWN) for then, now in zip(before, after, strict=True)
    )
    assert after.count(STATE_UNKNOWN) > before.count(STATE_UNKNOWN)


async def test_setup_retries_when_the_cloud_is_down(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A cloud failing during setup leaves the entry to retry, not broken."""
    simulator.faults.add("http_500", count=1, cloud="climkit", path="all_installations")
    assert not await setup_entry(climkit_entry)
    assert climkit_entry.state is ConfigEntryState.SETUP_RETRY


async def test_rate_limit_during_refresh(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Repeated 429s pause the account and postpone the next poll by Retry-After."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    simulator.faults.add("http_429", count=3, cloud="climkit", path="^/meter_data/")
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    assert coordinator.provider.state.limiter.throttled == 3
    await coordinator.async_refresh()
    assert coordinator.last_update_success


@pytest.mark.parametrize("kind", ["malformed_json", "missing_fields"])
async def test_bad_history_is_never_stored(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """A bad history answer stores nothing of it, says so once, and heals next hour."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    meter = SITE_LAC.meters[2]
    statistic_id = f"{DOMAIN}:climkit_{SITE_LAC.id}_{meter.id}_energy"
    before = await stored(hass, statistic_id)

    # Every request for this meter fails for a while; timers fire as time moves on.
    simulator.faults.add(
        kind, count=1000, cloud="climkit", path=f"^/meter_data/.*/{meter.id}$"
    )
    caplog.clear()
    freezer.tick(timedelta(hours=3))
    await hass.async_block_till_done(wait_background_tasks=True)
    await coordinator.async_import_statistics()
    await coordinator.async_import_statistics()
    assert await stored(hass, statistic_id) == before
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and meter.name in r.getMessage()
    ]
    if kind == "malformed_json":
        assert len(warnings) == 1
        assert "nothing of it was stored" in warnings[0]
    else:  # each import left the broken rows out, and said so once
        left_out = [
            r.getMessage() for r in caplog.records if "left out" in r.getMessage()
        ]
        assert left_out
        assert all(
            m.startswith("Climkit sent data that was left out") for m in left_out
        )
    # The other statistics went on.
    other = f"{DOMAIN}:climkit_{SITE_LAC.id}_{SITE_LAC.meters[3].id}_energy"
    assert max(await stored(hass, other)) == hour(NOW + timedelta(hours=2))

    simulator.faults.clear()
    await coordinator.async_import_statistics()
    if kind == "malformed_json":
        assert "imports again" in caplog.text
    truth = expected_series(simulator, SITE_LAC)[statistic_id]
    assert_matches_truth(
        await stored(hass, statistic_id),
        truth(NOW - timedelta(days=3), NOW + timedelta(hours=3)),
        statistic_id,
    )


async def test_refused_credentials_during_import_start_reauth(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A history import that finds the credentials refused asks the user, once."""
    assert await setup_entry(climkit_entry)
    simulator.climkit.revoke("demo")
    await climkit_entry.runtime_data.async_import_statistics()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_rate_limited_import_stops_and_resumes(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Persistent 429s stop the round of imports; the next round completes it."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    freezer.tick(timedelta(hours=2))
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(timedelta(hours=1))
    await hass.async_block_till_done(wait_background_tasks=True)
    simulator.faults.add("http_429", count=3, cloud="climkit", path="^/meter_data/")
    simulator.clear_log()
    await coordinator.async_import_statistics()
    assert "asked to slow down" in caplog.text
    # The round stopped at the first statistic: nothing else was asked.
    assert len(simulator.log_for("climkit")) == 3
    await coordinator.async_import_statistics()
    series = expected_series(simulator, SITE_LAC)
    for statistic_id, truth in series.items():
        assert_matches_truth(
            await stored(hass, statistic_id),
            truth(NOW - timedelta(days=3), NOW + timedelta(hours=3)),
            statistic_id,
        )


async def test_history_pauses_while_the_cloud_fails(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing cloud stops the round (no hour of requests into the void), says so once."""
    assert await setup_entry(climkit_entry)
    coordinator = climkit_entry.runtime_data
    series = expected_series(simulator, SITE_LAC)
    before = {sid: await stored(hass, sid) for sid in series}
    simulator.faults.add("http_500", count=1000, cloud="climkit", path="_data/")
    simulator.clear_log()
    caplog.clear()
    await coordinator.async_import_statistics()
    await coordinator.async_import_statistics()
    # One request per round, then the round stops: not one per statistic.
    assert [r.status for r in simulator.log_for("climkit")] == [500, 500]
    assert {sid: await stored(hass, sid) for sid in series} == before
    assert caplog.text.count("History import paused") == 1

    freezer.tick(timedelta(hours=3))
    simulator.faults.clear()
    await coordinator.async_import_statistics()
    assert caplog.text.count("History import resumed") == 1
    for statistic_id, truth in series.items():
        assert_matches_truth(
            await stored(hass, statistic_id),
            truth(NOW - timedelta(days=3), NOW + timedelta(hours=3)),
            statistic_id,
        )
