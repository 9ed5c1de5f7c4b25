"""Energydata.dk sign-in, datastream checks and discovery, against the simulator.

The token is static (Bearer): a latest read proves it. The API cannot list a
token's datastreams, so the user names them and discovery sends nothing; the
token, or a hash of it, never shows up in a log line, an error, an account, site or
statistic id: those carry the id made when the datastreams were first added.
"""

import hashlib
import logging

import pytest

from custom_components.cloud_energy_meters.providers.energydata import (
    EnergydataProvider,
)
from custom_components.cloud_energy_meters.providers.errors import (
    AuthError,
    RequestRejected,
)
from custom_components.cloud_energy_meters.providers.model import Kind, Quantity, Role
from tests.provider_factory import EDK_ACCOUNT_ID, EDK_DATASTREAMS, MakeProvider
from tests.simulator import Simulator
from tests.simulator.energydata import (
    DEMO_TOKEN,
    GAS_METER_ID,
    HEATING_VOLUME_ID,
    MAIN_METER_ID,
    PV_YIELD_ID,
    READ_ONLY_TOKEN,
    EnergydataCloud,
)

ALL_IDS = [int(raw["id"]) for raw in EDK_DATASTREAMS]


def values_requests(simulator: Simulator) -> list[tuple[str, int]]:
    """Return (ids, status) of every values request the simulator served."""
    return [
        (record.query.get("ids", ""), record.status)
        for record in simulator.log_for("energydata")
        if record.path == "/datastreams/values"
    ]


async def test_login_with_the_demo_token(
    simulator: Simulator, energydata: EnergydataProvider
) -> None:
    """A good token signs in with ONE latest read of every named datastream.

    The account is named by a hash of the token: the same token gives the same
    account, another token another one.
    """
    account = await energydata.async_login()
    records = simulator.log_for("energydata")
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/datastreams/values", 200)
    ]
    assert records[0].query == {
        "ids": ",".join(map(str, ALL_IDS)),
        "latest": "true",
    }
    assert records[0].account == EnergydataCloud.account_of(DEMO_TOKEN)
    assert account.id == EDK_ACCOUNT_ID
    assert DEMO_TOKEN not in account.id + account.name


async def test_login_without_datastreams_or_with_an_unknown_one(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """With nothing named (id 0) the 404 proves the token; an unknown datastream fails.

    A new token must read what the account reads: signing in checks every datastream.
    """
    await make_provider("energydata", settings={"datastreams": ()}).async_login()
    with pytest.raises(RequestRejected) as err:
        await make_provider(
            "energydata", settings={"datastreams": [{"id": 99999}]}
        ).async_login()
    assert err.value.status == 404
    assert values_requests(simulator) == [("0", 404), ("99999", 404)]


@pytest.mark.parametrize("token", ["edk-wrong-token", ""])
async def test_bad_token_is_auth_error(
    simulator: Simulator, make_provider: MakeProvider, token: str
) -> None:
    """A token the cloud does not know (or none) is AuthError, not a rejected request."""
    provider = make_provider("energydata", api_token=token)
    with pytest.raises(AuthError):
        await provider.async_login()
    with pytest.raises(AuthError):
        await provider.async_check([MAIN_METER_ID])
    assert [status for _, status in values_requests(simulator)] == [401, 401]


async def test_check_datastreams(
    simulator: Simulator, make_provider: MakeProvider
) -> None:
    """async_check: 403 for a datastream the token may not read, 404 for an unknown one.

    The read-only token reads 65603 and 65607 only; each check is one request.
    """
    read_only = make_provider("energydata", api_token=READ_ONLY_TOKEN)
    await read_only.async_check([MAIN_METER_ID, PV_YIELD_ID])
    with pytest.raises(RequestRejected) as forbidden:
        await read_only.async_check([MAIN_METER_ID, HEATING_VOLUME_ID])
    assert forbidden.value.status == 403
    assert str(HEATING_VOLUME_ID) in forbidden.value.detail
    with pytest.raises(RequestRejected) as unknown:
        await make_provider("energydata").async_check([GAS_METER_ID, 12345])
    assert unknown.value.status == 404
    assert "12345" in unknown.value.detail
    assert values_requests(simulator) == [
        (f"{MAIN_METER_ID},{PV_YIELD_ID}", 200),
        (f"{MAIN_METER_ID},{HEATING_VOLUME_ID}", 403),
        (f"{GAS_METER_ID},12345", 404),
    ]


async def test_read_only_token_cannot_sign_in_to_a_forbidden_datastream(
    make_provider: MakeProvider,
) -> None:
    """Only 404 is tolerated at sign-in: a datastream the token may not read is 403."""
    with pytest.raises(RequestRejected) as err:
        await make_provider("energydata", api_token=READ_ONLY_TOKEN).async_login()
    assert err.value.status == 403


async def test_discover(simulator: Simulator, energydata: EnergydataProvider) -> None:
    """One site for the token, a device per datastream (group kept), no request.

    Only energy, water and gas datastreams that are not measurements get a
    history and a statistic; the channel's kind follows the meaning the user gave.
    """
    sites = await energydata.async_list_sites()
    inventory = await energydata.async_discover([site.id for site in sites])
    assert simulator.log_for("energydata") == []
    assert len(sites) == 1
    assert inventory.sites == sites
    assert inventory.listed == (sites[0].id,)
    site_id = sites[0].id
    devices = {device.id: device for device in inventory.devices}
    assert list(devices) == [f"{site_id}:datastream:{i}" for i in ALL_IDS]
    for raw in EDK_DATASTREAMS:
        device = devices[f"{site_id}:datastream:{raw['id']}"]
        assert (device.site_id, device.name, device.serial_number) == (
            site_id,
            raw["name"],
            str(raw["id"]),
        )
        assert device.group == raw.get("group")
        assert device.model == "dtu-b101"  # the dataset prefix of its topic
    channels = {channel.source_id: channel for channel in inventory.channels}
    described = {
        int(key): (c.quantity, c.kind, c.unit, c.history, c.device_id, c.ref)
        for key, c in channels.items()
    }
    assert described == {
        65603: (
            Quantity.ENERGY,
            Kind.REGISTER,
            "kWh",
            True,
            f"{site_id}:datastream:65603",
            ("65603", "register"),
        ),
        65607: (
            Quantity.ENERGY,
            Kind.INTERVAL,
            "Wh",
            True,
            f"{site_id}:datastream:65607",
            ("65607", "amount_end"),
        ),
        65863: (
            Quantity.TEMPERATURE,
            Kind.INSTANT,
            "°C",
            False,
            f"{site_id}:datastream:65863",
            ("65863", "measurement"),
        ),
        70001: (
            Quantity.WATER,
            Kind.REGISTER,
            "m³",
            True,
            f"{site_id}:datastream:70001",
            ("70001", "register"),
        ),
        70002: (
            Quantity.TEXT,
            Kind.INSTANT,
            "",
            False,
            f"{site_id}:datastream:70002",
            ("70002", "measurement"),
        ),
        70003: (
            Quantity.GAS,
            Kind.REGISTER,
            "L",
            True,
            f"{site_id}:datastream:70003",
            ("70003", "register"),
        ),
    }
    words = {65603: "energy", 65607: "energy", 70001: "volume", 70003: "gas"}
    for stream_id, channel in channels.items():
        word = words.get(int(stream_id))
        assert channel.statistic == (f"{site_id}_{stream_id}_{word}" if word else None)
        assert channel.key == f"{site_id}:{stream_id}"
        assert channel.attributes["datastream_id"] == int(stream_id)
    assert len({c.statistic for c in inventory.channels if c.statistic}) == 4
    assert energydata.refresh_cost(inventory.channels) == 1
    assert energydata.refresh_cost([]) == 0
    assert energydata.push_configured


async def test_measured_energy_and_defaults(make_provider: MakeProvider) -> None:
    """An energy measurement has no statistic; bare settings fall back to defaults.

    A datastream given only by id is an unnamed measurement of "other", without
    topic: no device model and no MQTT. Its role on the Energy dashboard is the one
    the user gave an energy datastream; none (measurement) for anything else, for
    an unknown role, or when none was given.
    """
    provider = make_provider(
        "energydata",
        settings={
            "datastreams": [
                {
                    "id": 1,
                    "name": "Power-ish energy",
                    "quantity": "energy",
                    "unit": "kWh",
                },
                {"id": 2, "topic": "/dtu-b101/x/", "role": "grid_import"},
                {"id": "3", "quantity": "gas", "meaning": "amount_start"},
                {"id": 4, "quantity": "energy", "meaning": "register", "unit": "kWh"}
                | {"role": "production"},
                {"id": 5, "quantity": "energy", "meaning": "register", "unit": "kWh"}
                | {"role": "<b>solar</b>"},
            ]
        },
    )
    inventory = await provider.async_discover([])
    first, second, third, *_ = inventory.channels
    assert [c.role for c in inventory.channels] == [
        Role.MEASUREMENT,
        Role.MEASUREMENT,  # a role for "other": not energy, not on the dashboard
        Role.MEASUREMENT,
        Role.PRODUCTION,
        Role.MEASUREMENT,  # not a role
    ]
    assert (first.kind, first.history, first.statistic) == (
        Kind.INSTANT,
        False,
        None,
    )
    assert (second.name, second.quantity, second.unit) == (
        "Datastream 2",
        Quantity.OTHER,
        "",
    )
    assert second.attributes["topic"] == "dtu-b101/x"
    assert (third.kind, third.history, third.ref) == (
        Kind.INTERVAL,
        True,
        ("3", "amount_start"),
    )
    assert third.statistic is not None
    assert third.statistic.endswith("_3_gas")
    assert [d.model for d in inventory.devices] == [None, "dtu-b101", None, None, None]
    assert all(d.group is None for d in inventory.devices)
    assert (
        make_provider(
            "energydata", settings={"datastreams": [{"id": 1}]}
        ).push_configured
        is False
    )


async def test_ids_hold_no_token_and_the_token_is_never_logged(
    simulator: Simulator,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG, sign-in, checks, discovery, errors and the ids hold no token.

    The ids carry the account's own id, never the token, a fragment or a hash of
    it: another token of the same datastreams gives the same ids.
    """
    caplog.set_level(logging.DEBUG)
    demo = make_provider("energydata")
    errors: list[str] = []
    await demo.async_login()
    inventory = await demo.async_discover([])
    await demo.async_latest(inventory.channels)
    read_only = make_provider("energydata", api_token=READ_ONLY_TOKEN)
    for call in (
        read_only.async_login(),
        read_only.async_check([GAS_METER_ID]),
        make_provider("energydata", api_token="edk-wrong-token-xyz").async_login(),
    ):
        with pytest.raises((RequestRejected, AuthError)) as caught:
            await call
        errors.append(str(caught.value))
    other = await read_only.async_discover([])
    assert "Energydata.dk GET /energydata/api/v1/datastreams/values" in caplog.text
    text = caplog.text + "\n".join(errors)
    for token in (DEMO_TOKEN, READ_ONLY_TOKEN, "edk-wrong-token-xyz"):
        assert token not in text
    assert "Bearer" not in text
    # The ids are the account's, made when its datastreams were first added: the
    # token is in none of them, nor its hash; a new token keeps them all.
    assert other == inventory
    for token in (DEMO_TOKEN, READ_ONLY_TOKEN):
        digest = hashlib.sha256(token.encode()).hexdigest()
        ids = [
            inventory.account.id,
            inventory.account.name,
            *(site.id for site in inventory.sites),
            *(device.id for device in inventory.devices),
            *(c.key for c in inventory.channels),
            *(c.statistic or "" for c in inventory.channels),
        ]
        for ident in ids:
            assert token not in ident
            assert token[:8] not in ident
            assert digest[:8] not in ident
        assert all(EDK_ACCOUNT_ID in c.key for c in inventory.channels)
    assert inventory.sites[0].id == other.sites[0].id == EDK_ACCOUNT_ID
    key = EnergydataProvider.account_key(
        simulator.url("energydata"), {"api_token": DEMO_TOKEN}
    )
    assert key.startswith("energydata:127.0.0.1:")
    assert DEMO_TOKEN not in key
    assert key != EnergydataProvider.account_key(
        simulator.url("energydata"), {"api_token": READ_ONLY_TOKEN}
    )
