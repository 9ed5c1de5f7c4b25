"""Diagnostics: what the integration knows and did, with every secret redacted."""

from dataclasses import asdict
import time
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .coordinator import CloudEnergyConfigEntry, CloudEnergyCoordinator

# Credentials (a Locus client id is one: it is half of what signs in), and what
# identifies the person: the title carries the username, addresses locate a home.
TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    "email",
    "access_token",
    "refresh_token",
    "client_id",
    "client_secret",
    "api_token",
    "token",
    "title",
    "address",
    "unique_id",
}


def _plan(coordinator: CloudEnergyCoordinator) -> dict[str, Any]:
    """Return the request plan and what the budgets' windows hold (budgeted clouds)."""
    if (plan := coordinator.pacing.plan) is None:
        return {}
    limiter = coordinator.provider.state.limiter
    now = time.time()
    sent = limiter.sent_at()
    return {
        "share": limiter.share_now(),
        "refresh": str(plan.refresh),
        "history_cadence": str(plan.history),
        "reserve": list(plan.reserve),
        "feasible": plan.feasible,
        "in_windows": [
            {
                "budget": f"{budget.count} per {budget.period:.0f} s",
                "sent": sum(1 for moment in sent if moment > now - budget.period),
            }
            for budget in limiter.policy.budgets
        ],
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: CloudEnergyConfigEntry
) -> dict[str, Any]:
    """Return the entry, its inventory, latest readings, imports and request counts."""
    coordinator = entry.runtime_data
    inventory = coordinator.inventory
    limiter = coordinator.provider.state.limiter
    return async_redact_data(
        {
            "entry": entry.as_dict(),
            "provider": coordinator.provider.key,
            "update_interval": str(coordinator.update_interval),
            "minimum_interval": str(coordinator.minimum_interval),
            "last_update_success": coordinator.last_update_success,
            "requests": {
                "sent": limiter.requests,
                "throttled": limiter.throttled,
                "cost_per_refresh": coordinator.provider.refresh_cost(
                    coordinator.channels
                ),
                **_plan(coordinator),
            },
            "sites": [asdict(site) for site in inventory.sites] if inventory else [],
            "devices": [asdict(device) for device in inventory.devices]
            if inventory
            else [],
            "open_alerts": [
                asdict(alert) for alert in coordinator.alerts.values() if alert.open
            ],
            "channels": [
                {
                    **asdict(channel),
                    "reading": asdict(reading)
                    if (reading := coordinator.data.get(channel.key))
                    else None,
                }
                for channel in coordinator.channels
            ],
            "imports": {
                coordinator.imported.pinned.get(key, key): asdict(result)
                for key, result in coordinator.imports.items()
            },
            # What the provider keeps between restarts (a schedule, whole: its
            # entity shows only the value now).
            "memory": coordinator.provider.memory(),
        },
        TO_REDACT,
    )
