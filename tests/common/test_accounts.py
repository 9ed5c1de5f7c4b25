"""Per-account shared state: held by the entries and flows of an account, then dropped.

Entries of one account (and flows checking it) share one rate limiter and one token
while any of them is alive; the last one to go drops them.
"""

import asyncio
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.cloud_energy_meters.accounts import account_holders
from custom_components.cloud_energy_meters.const import (
    CONF_ADVANCED,
    CONF_API_URL,
    DOMAIN,
)
from custom_components.cloud_energy_meters.providers.climkit import ClimkitProvider
from custom_components.cloud_energy_meters.providers.locus import LocusProvider
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from tests.conftest import SetupEntry, climkit_entry_for, locus_entry_for
from tests.helpers import climkit_credentials, open_flow
from tests.simulator import Simulator
from tests.simulator.climkit import DEMO_PASSWORD, DEMO_USERNAME, SITE_LAC
from tests.simulator.locus import CEDAR_SITE_ID, OTHER_PARTNER_ID

pytestmark = pytest.mark.usefixtures("recorder_mock")


def climkit_key(simulator: Simulator, username: str = DEMO_USERNAME) -> str:
    """Return the account key of a Climkit user of the simulator."""
    return ClimkitProvider.account_key(
        simulator.url("climkit"), {CONF_USERNAME: username}
    )


async def climkit_credentials_step(
    hass: HomeAssistant,
    simulator: Simulator,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
) -> dict[str, Any]:
    """Open a user flow, pick Climkit and submit credentials; return the result."""
    result = await open_flow(hass, "climkit")
    return await hass.config_entries.flow.async_configure(
        result["flow_id"],
        climkit_credentials(simulator.url("climkit"), username, password),
    )


async def test_entry_unload_releases_its_account(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """Unloading the only entry of an account drops its limiter and token."""
    assert await setup_entry(climkit_entry)
    state = climkit_entry.runtime_data.provider.state
    assert state.tokens.token is not None
    assert account_holders(hass) == {
        climkit_key(simulator): frozenset({climkit_entry.entry_id})
    }
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    assert account_holders(hass) == {}
    assert await setup_entry(climkit_entry)
    again = climkit_entry.runtime_data.provider.state
    assert again is not state
    assert again.limiter is not state.limiter


async def test_failed_setup_releases_its_account(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """An entry whose setup fails holds nothing while it waits to retry."""
    entry = climkit_entry_for(simulator)
    simulator.faults.add("http_500", count=5, cloud="climkit", path="^/auth$")
    assert not await setup_entry(entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert account_holders(hass) == {}


async def test_entries_of_one_account_share_until_the_last_unloads(
    hass: HomeAssistant, simulator: Simulator, setup_entry: SetupEntry
) -> None:
    """Two partners of one Locus user: one state, kept while either entry is loaded."""
    first = locus_entry_for(simulator)
    second = locus_entry_for(
        simulator,
        partner_id=OTHER_PARTNER_ID,
        sites=[str(CEDAR_SITE_ID)],
        unique_id="locus_second",
    )
    assert await setup_entry(first)
    assert await setup_entry(second)
    shared = first.runtime_data.provider.state
    assert second.runtime_data.provider.state is shared
    key = LocusProvider.account_key(simulator.url("locus"), first.data)
    assert account_holders(hass) == {key: frozenset({first.entry_id, second.entry_id})}

    assert await hass.config_entries.async_unload(first.entry_id)
    assert account_holders(hass) == {key: frozenset({second.entry_id})}
    assert await setup_entry(first)
    assert first.runtime_data.provider.state is shared

    assert await hass.config_entries.async_unload(second.entry_id)
    assert first.runtime_data.provider.state is shared
    assert account_holders(hass) == {key: frozenset({first.entry_id})}
    assert await hass.config_entries.async_unload(first.entry_id)
    assert account_holders(hass) == {}


async def test_a_flow_closed_by_the_user_releases_its_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The user closes the dialog at the sites step: the checked account is let go."""
    result = await climkit_credentials_step(hass, simulator)
    assert result["step_id"] == "sites"
    assert account_holders(hass) == {
        climkit_key(simulator): frozenset({result["flow_id"]})
    }
    hass.config_entries.flow.async_abort(result["flow_id"])
    assert account_holders(hass) == {}


async def test_a_flow_closed_before_signing_in_holds_nothing(
    hass: HomeAssistant,
) -> None:
    """Closing the dialog at the cloud menu releases nothing and fails nothing."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    hass.config_entries.flow.async_abort(result["flow_id"])
    assert account_holders(hass) == {}
    assert not hass.config_entries.flow.async_progress()


async def test_a_flow_that_aborts_releases_its_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """A flow that signs in, then finds the account configured, holds nothing after."""
    climkit_entry_for(simulator).add_to_hass(hass)  # configured, not loaded
    result = await climkit_credentials_step(hass, simulator)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert account_holders(hass) == {}


async def test_a_flow_given_other_credentials_lets_go_of_the_first_account(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Refused as one user, the flow tries another: it holds only the second."""
    simulator.climkit.add_user("solo", "solo-password")
    result = await climkit_credentials_step(hass, simulator, password="wrong")
    assert result["errors"] == {"base": "invalid_auth"}
    flow_id = result["flow_id"]
    assert account_holders(hass) == {climkit_key(simulator): frozenset({flow_id})}
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_USERNAME: "solo",
            CONF_PASSWORD: "solo-password",
            CONF_ADVANCED: {CONF_API_URL: simulator.url("climkit")},
        },
    )
    assert result["step_id"] == "sites"
    assert account_holders(hass) == {
        climkit_key(simulator, "solo"): frozenset({flow_id})
    }
    hass.config_entries.flow.async_abort(flow_id)
    assert account_holders(hass) == {}


async def test_a_finished_flow_hands_its_account_to_the_entry(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The new entry shares the state the flow used; the flow's hold ends with it.

    Every request of the flow and of the entry went through one limiter.
    """
    result = await climkit_credentials_step(hass, simulator)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"sites": [SITE_LAC.id]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done(wait_background_tasks=True)
    assert account_holders(hass) == {
        climkit_key(simulator): frozenset({entry.entry_id})
    }
    limiter = entry.runtime_data.provider.state.limiter
    assert limiter.requests == len(simulator.log_for("climkit"))
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert account_holders(hass) == {}


async def test_a_reauth_flow_shares_its_entry_account(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A reauth flow and its entry hold one state; closing the flow keeps it."""
    assert await setup_entry(climkit_entry)
    result = await climkit_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    key = climkit_key(simulator)
    assert account_holders(hass) == {
        key: frozenset({climkit_entry.entry_id, result["flow_id"]})
    }
    hass.config_entries.flow.async_abort(result["flow_id"])
    assert account_holders(hass) == {key: frozenset({climkit_entry.entry_id})}


async def test_a_limiter_still_holding_back_outlives_its_account(
    hass: HomeAssistant,
    simulator: Simulator,
    climkit_entry: MockConfigEntry,
    setup_entry: SetupEntry,
) -> None:
    """A pause the cloud asked for survives a reload; the token does not.

    Once the pause is over, the limiter is forgotten at the next use of any account.
    """
    simulator.climkit.add_user("solo", "solo-password")
    assert await setup_entry(climkit_entry)
    state = climkit_entry.runtime_data.provider.state
    state.limiter.pause(0.3)  # as a 429 with Retry-After would
    assert await hass.config_entries.async_reload(climkit_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    reloaded = climkit_entry.runtime_data.provider.state
    assert reloaded is not state
    assert reloaded.limiter is state.limiter
    assert reloaded.tokens is not state.tokens

    reloaded.limiter.pause(0.3)
    assert await hass.config_entries.async_unload(climkit_entry.entry_id)
    await asyncio.sleep(0.35)
    result = await climkit_credentials_step(hass, simulator, "solo", "solo-password")
    # Another account: every site is the demo entry's, so its flow ends at once.
    assert result["reason"] == "already_configured"
    assert await setup_entry(climkit_entry)
    assert climkit_entry.runtime_data.provider.state.limiter is not state.limiter
