"""Constants shared by the Home Assistant side of the integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "cloud_energy_meters"
EVENT_ALERT: Final = "cloud_energy_meters_alert"
"""Fired when a cloud reports that an alert opened or closed."""

CONF_PROVIDER: Final = "provider"
CONF_API_URL: Final = "api_url"
CONF_PARTNER_ID: Final = "partner_id"
CONF_ACCOUNT_ID: Final = "account_id"
"""An id made when an entry is created, for clouds whose credentials name no account."""
CONF_DATASTREAMS: Final = "datastreams"
CONF_MQTT_HOST: Final = "mqtt_host"
CONF_MQTT_PORT: Final = "mqtt_port"
CONF_ADVANCED: Final = "advanced"
CONF_SITES: Final = "sites"
CONF_KNOWN_SITES: Final = "known_sites"
"""Every site the account offered when the user chose: later ones are new, and join."""
CONF_UPDATE_INTERVAL: Final = "update_interval"
CONF_BACKFILL_DAYS: Final = "backfill_days"
CONF_BUDGET_SHARE: Final = "budget_share"
"""Percent of a cloud's request budgets the entry may spend (clouds with budgets)."""

DEFAULT_UPDATE_INTERVAL: Final = 10
"""Minutes between two reads of the latest values (raised if the rate budget needs it)."""
DEFAULT_BACKFILL_DAYS: Final = 30
MAX_BACKFILL_DAYS: Final = 365
DEFAULT_BUDGET_SHARE: Final = 60
"""The rest of the budgets is left to the account's other clients (a phone app)."""

STATISTICS_INTERVAL: Final = timedelta(hours=1)
"""How often history is imported: the clouds publish validated data every 15 min–1 h."""
REIMPORT_WINDOW: Final = timedelta(hours=48)
"""Trailing window re-imported on every run, so late and corrected data lands."""
DISCOVERY_INTERVAL: Final = timedelta(hours=12)
"""How often sites and channels are listed again (new meters appear, old ones go)."""
BUDGET_SHARE: Final = 0.5
"""Share of an account's request budget polling may use; the rest is for history."""
