"""FlexMeasures config entries of the simulator's users, for cross-cloud tests.

The simulator's server part of every id is its host and port ("127.0.0.1:PORT"),
as an entry made through the config flow would have learnt it at its first login.
tests/flexmeasures/entries.py does the same for a real FlexMeasures server.
"""

from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.cloud_energy_meters.const import CONF_BACKFILL_DAYS
from homeassistant.config_entries import ConfigSubentryData
from tests.flexmeasures.entries import user_entry
from tests.simulator import Simulator
from tests.simulator.flexmeasures_data import (
    ASSETS,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    HOUSE_ID,
    USERS,
)


def sim_server(simulator: Simulator) -> str:
    """Return the server part of the simulator's ids: its host and port."""
    url = URL(simulator.url("flexmeasures"))
    return f"{url.host}:{url.port}"


def sim_site(simulator: Simulator, asset_id: int = HOUSE_ID) -> str:
    """Return the site id of a top-level asset of the simulator."""
    return f"{sim_server(simulator)}:{asset_id}"


def flexmeasures_sim_entry(
    simulator: Simulator,
    *,
    email: str = DEMO_EMAIL,
    password: str = DEMO_PASSWORD,
    sites: list[str] | None = None,
    options: dict[str, Any] | None = None,
    subentries: list[ConfigSubentryData] | None = None,
) -> MockConfigEntry:
    """Return a user's entry of the simulated server (not yet added).

    Sites: the demo house by default; known sites: every top-level asset of the
    user's account.
    """
    user = next(u for u in USERS if u.email == email)
    known = [
        sim_site(simulator, asset.id)
        for asset in ASSETS
        if asset.account_id == user.account_id and asset.parent_id is None
    ]
    return user_entry(
        simulator.url("flexmeasures"),
        (email, password, user.id),
        [sim_site(simulator)] if sites is None else sites,
        known,
        {CONF_BACKFILL_DAYS: 3} if options is None else options,
        subentries,
    )
