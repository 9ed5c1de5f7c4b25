"""Locus Energy alerts against the simulator: all at first, then only what changed.

The first read of a site asks its alerts with tz=UTC and nothing else; later
reads send `updatedSince`, the previous read's time minus a 5-minute overlap,
and get only the alerts opened, closed or otherwise updated since.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.cloud_energy_meters.providers.errors import RequestRejected
from custom_components.cloud_energy_meters.providers.locus import (
    ALERT_OVERLAP,
    LocusProvider,
)
from custom_components.cloud_energy_meters.providers.model import Alert
from tests.provider_factory import LOCUS_CLIENT_CREDENTIALS, MakeProvider
from tests.simulator import Simulator
from tests.simulator.clock import FakeClock
from tests.simulator.locus import (
    CEDAR_SITE_ID,
    HARBOR_INVERTER_ID,
    HARBOR_SITE_ID,
    MAPLE_INVERTER_ID,
    MAPLE_SITE_ID,
    _Alert as SimAlert,
)
from tests.stub import StubServer


def truth_alerts(simulator: Simulator, site_id: int) -> list[SimAlert]:
    """Return the alerts the simulated site has started by now (its ground truth)."""
    component_ids = {c.id for c in simulator.locus.components_of(site_id)}
    return simulator.locus._alerts(component_ids)


def updated(alert: SimAlert, now: datetime) -> datetime:
    """Return when an alert last changed: its end once that happened, else its start."""
    return alert.end if alert.end is not None and alert.end <= now else alert.start


def alert_reads(simulator: Simulator, site_id: int) -> list[dict[str, str]]:
    """Return the query of every alerts request for a site, oldest first."""
    return [
        r.query
        for r in simulator.log_for("locus")
        if r.path == f"/sites/{site_id}/alerts"
    ]


async def test_first_read_returns_every_alert(
    simulator: Simulator, sim_clock: FakeClock, locus: LocusProvider
) -> None:
    """The first read returns all of each site's alerts, asked with tz=UTC only."""
    sites = [str(MAPLE_SITE_ID), str(HARBOR_SITE_ID)]
    latest = await locus.async_latest([], sites)
    for site_id in (MAPLE_SITE_ID, HARBOR_SITE_ID):
        truth = truth_alerts(simulator, site_id)
        got = [a for a in latest.alerts if a.site_id == str(site_id)]
        assert [a.id for a in got] == [str(alert.id) for alert in truth]
        assert len(got) > 50
        assert alert_reads(simulator, site_id) == [{"tz": "UTC"}]
    assert len(latest.alerts) == sum(
        len(truth_alerts(simulator, site)) for site in (MAPLE_SITE_ID, HARBOR_SITE_ID)
    )


async def test_alert_fields(
    simulator: Simulator, sim_clock: FakeClock, locus: LocusProvider
) -> None:
    """An alert keeps its id, component (device and source), type, priority, texts."""
    latest = await locus.async_latest([], [str(HARBOR_SITE_ID)])
    truth = truth_alerts(simulator, HARBOR_SITE_ID)[-1]
    inverter = simulator.locus.component(HARBOR_INVERTER_ID)
    assert truth.component_id == HARBOR_INVERTER_ID
    assert truth.end is not None  # Harbor's faults last five hours
    assert latest.alerts[-1] == Alert(
        id=str(truth.id),
        site_id=str(HARBOR_SITE_ID),
        device_id=f"component-{HARBOR_INVERTER_ID}",
        device_name=inverter.name,
        source_id=str(HARBOR_INVERTER_ID),
        type=truth.alert_type,
        priority=truth.priority,
        start=truth.start,
        end=truth.end if truth.end <= sim_clock() else None,
        description="VDC high",
        details="A voltage higher than 2100 V is present on the DC bus. (Resettable)",
    )
    for alert in latest.alerts:
        assert alert.start.tzinfo is UTC
        assert alert.end is None or alert.end.tzinfo is UTC


async def test_later_reads_return_only_changes(
    simulator: Simulator, sim_clock: FakeClock, locus: LocusProvider
) -> None:
    """Later reads send updatedSince, the previous read - 5 min: only changes come.

    An opened alert arrives open, then closed; alerts that did not change in
    between are not sent again.
    """
    site = str(MAPLE_SITE_ID)
    first_read = datetime.now(UTC)
    first = await locus.async_latest([], [site])
    after_first = datetime.now(UTC)
    assert len(first.alerts) == len(truth_alerts(simulator, MAPLE_SITE_ID))

    alert_id = simulator.locus.open_alert(
        MAPLE_INVERTER_ID, "Device Fault", "High", short="Arc fault"
    )
    second = await locus.async_latest([], [site])
    since = alert_reads(simulator, MAPLE_SITE_ID)[-1]["updatedSince"]
    sent = datetime.fromisoformat(since).replace(tzinfo=UTC)
    earliest = (first_read - ALERT_OVERLAP).replace(microsecond=0)
    assert earliest <= sent <= after_first - ALERT_OVERLAP
    changed = {
        str(a.id)
        for a in truth_alerts(simulator, MAPLE_SITE_ID)
        if updated(a, sim_clock()) >= sent
    }
    assert str(alert_id) in changed
    assert {a.id for a in second.alerts} == changed
    assert len(second.alerts) < len(first.alerts)
    opened = next(a for a in second.alerts if a.id == str(alert_id))
    assert (opened.end, opened.open, opened.type, opened.priority) == (
        None,
        True,
        "Device Fault",
        "High",
    )
    assert opened.start == sim_clock()
    assert opened.description == "Arc fault"
    assert opened.details is None

    sim_clock.advance(timedelta(minutes=3))
    simulator.locus.close_alert(alert_id)
    third = await locus.async_latest([], [site])
    closed = next(a for a in third.alerts if a.id == str(alert_id))
    assert closed.end == sim_clock()
    assert not closed.open
    queries = alert_reads(simulator, MAPLE_SITE_ID)
    assert [set(q) for q in queries] == [
        {"tz"},
        {"tz", "updatedSince"},
        {"tz", "updatedSince"},
    ]
    assert queries[2]["updatedSince"] >= queries[1]["updatedSince"]


async def test_each_provider_remembers_its_own_reads(
    simulator: Simulator, sim_clock: FakeClock, make_provider: MakeProvider
) -> None:
    """A second entry of the account starts with every alert, whatever the first read."""
    first, second = make_provider("locus"), make_provider("locus")
    site = str(HARBOR_SITE_ID)
    await first.async_latest([], [site])
    await first.async_latest([], [site])
    everything = await second.async_latest([], [site])
    assert len(everything.alerts) == len(truth_alerts(simulator, HARBOR_SITE_ID))
    assert [set(q) for q in alert_reads(simulator, HARBOR_SITE_ID)] == [
        {"tz"},
        {"tz", "updatedSince"},
        {"tz"},
    ]


async def test_forbidden_site_alerts_are_rejected(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """Alerts of a site the account may not read (403) fail the read: not gone."""
    provider = make_provider("locus", **LOCUS_CLIENT_CREDENTIALS)
    with pytest.raises(RequestRejected) as caught:
        await provider.async_latest([], [str(CEDAR_SITE_ID)])
    assert caught.value.status == 403
    assert alert_reads(simulator, CEDAR_SITE_ID) == [{"tz": "UTC"}]


@pytest.mark.parametrize(
    "alert",
    [
        {"componentId": 5, "start": "2026-11-01T13:00:00-00:00"},
        {"id": 1, "start": "2026-11-01T13:00:00-00:00"},
        {"id": 1, "componentId": 5},
        {"id": 1, "componentId": 5, "start": "yesterday"},
        {"id": 1, "componentId": 5, "start": "2026-11-01T13:00:00", "end": 7},
        # Found by scripts/fuzz --cloud locus --examples 2000 --seed 20261207.
        {
            "id": 1,
            "componentId": 5,
            "start": "2026-11-01T13:00:00",
            "end": "2026-01-01T00:00:00",
        },
    ],
    ids=["no-id", "no-component", "no-start", "bad-start", "bad-end", "ends-first"],
)
async def test_malformed_alerts(
    stub: StubServer, make_provider: MakeProvider, alert: dict[str, Any]
) -> None:
    """Alerts without id, component or a readable start/end are left out, counted."""
    stub.locus_auth()
    good = {"id": 2, "componentId": 5, "start": "2026-11-01T13:00:00-00:00"}
    stub.json("GET", "/v3/sites/1/alerts", {"alerts": [alert, good]})
    provider = make_provider("locus", api_url=f"{stub.url}/v3")
    alerts = (await provider.async_latest([], ["1"])).alerts
    assert [a.id for a in alerts] == ["2"]
    assert provider.refusals.total == 1


async def test_minimal_alert(stub: StubServer, make_provider: MakeProvider) -> None:
    """An alert with only id, component and start gets defaults; naive times are UTC."""
    stub.locus_auth()
    stub.json(
        "GET",
        "/v3/sites/1/alerts",
        {"alerts": [{"id": 9, "componentId": 5, "start": "2026-11-01T13:00:00"}]},
    )
    latest = await make_provider("locus", api_url=f"{stub.url}/v3").async_latest(
        [], ["1"]
    )
    assert latest.alerts == (
        Alert(
            id="9",
            site_id="1",
            device_id="component-5",
            device_name="5",
            source_id="5",
            type="Alert",
            priority="",
            start=datetime(2026, 11, 1, 13, tzinfo=UTC),
        ),
    )
