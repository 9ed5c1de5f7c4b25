"""One site, one entry: what other entries of the same cloud already hold.

Two entries reading one site would write the same statistics and claim the same
devices and unique ids; a site already added is therefore not offered again.
"""

from yarl import URL

from homeassistant.core import HomeAssistant

from .const import CONF_API_URL, CONF_PROVIDER, CONF_SITES, DOMAIN


def same_server(url: str, other: str) -> bool:
    """Tell whether two API URLs reach the same server (ids are unique per server)."""
    try:
        first, second = URL(url.strip()), URL(other.strip())
    except ValueError:
        return url.strip() == other.strip()
    return (first.host, first.port) == (second.host, second.port)


def sites_taken(
    hass: HomeAssistant, provider_key: str, api_url: str, exclude: str | None = None
) -> set[str]:
    """Return the sites other entries of this cloud's server hold (not `exclude`'s)."""
    return {
        site
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.entry_id != exclude
        and entry.data.get(CONF_PROVIDER) == provider_key
        and same_server(str(entry.data.get(CONF_API_URL, "")), api_url)
        for site in entry.data.get(CONF_SITES, ())
    }
