"""FlexMeasures config entries of a server's seeded users, for Home Assistant tests."""

from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.const import (
    CONF_API_URL,
    CONF_BACKFILL_DAYS,
    CONF_KNOWN_SITES,
    CONF_PROVIDER,
    CONF_SITES,
    DOMAIN,
)
from custom_components.cloud_energy_meters.migration import VERSION
from homeassistant.config_entries import ConfigSubentryData
from tests.flexmeasures_real import FlexMeasuresServer

HOUSE = "Demo house"
BATTERY = "Home battery"


def server_id(url: str) -> str:
    """Return the server part of a FlexMeasures entry's ids: its host and port."""
    return url.split("://", 1)[1].split("/", 1)[0]


def site_id(server: FlexMeasuresServer, asset: str = HOUSE) -> str:
    """Return the site id of a top-level asset."""
    return f"{server_id(server.url)}:{server.assets[asset]}"


def user_entry(
    url: str,
    user: tuple[str, str, int],
    sites: list[str],
    known: list[str],
    options: dict[str, Any],
    subentries: list[ConfigSubentryData] | None = None,
) -> MockConfigEntry:
    """Return the entry of a FlexMeasures user (e-mail, password, id) at `url`."""
    email, password, user_id = user
    ident = server_id(url)
    return MockConfigEntry(
        domain=DOMAIN,
        version=VERSION,
        title=f"FlexMeasures {email}",
        unique_id=f"flexmeasures_{ident}:{user_id}",
        data={
            CONF_PROVIDER: "flexmeasures",
            CONF_API_URL: url,
            "email": email,
            "password": password,
            "server": ident,
            CONF_SITES: sites,
            CONF_KNOWN_SITES: known,
        },
        options=options,
        subentries_data=subentries or [],
    )


def flexmeasures_entry(
    server: FlexMeasuresServer,
    *,
    url: str | None = None,
    options: dict[str, Any] | None = None,
    subentries: list[ConfigSubentryData] | None = None,
) -> MockConfigEntry:
    """Return the demo user's entry of a real FlexMeasures server (not yet added)."""
    demo = server.demo
    return user_entry(
        url or server.url,
        (demo.email, demo.password, demo.user_id),
        [site_id(server)],
        [site_id(server)],
        {CONF_BACKFILL_DAYS: 2} if options is None else options,
        subentries,
    )
