"""Prepare the throwaway Home Assistant config directory for scripts/develop.

Run with the venv's Python while Home Assistant is *not* running on the directory:

    .venv/bin/python scripts/develop_config/prepare.py CONFIG_DIR \
        --port 8123 --username dev --password dev

It uses Home Assistant's own auth manager and storage helpers, so the files it
writes have the format this Home Assistant version expects:

- an owner user (admin) with those credentials, unless an owner exists already,
  and the onboarding steps marked done, so the login page comes up instead of
  onboarding (the onboarding "core_config" step would also start the met,
  radio_browser and google_translate config flows, which need the internet);
- the HTTP server settings in .storage/http: 127.0.0.1:<port>. Home Assistant
  2026.10 keeps them there; an `http:` section in configuration.yaml is imported
  once as a 5-minute trial (not promoted → revert to 0.0.0.0:8123 and restart)
  and ignored afterwards, so a port change would not take effect.
"""

import argparse
import asyncio
from pathlib import Path

from homeassistant import runner
from homeassistant.auth import auth_manager_from_config
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.auth.providers import homeassistant as hass_auth
from homeassistant.components.http import config as http_config
from homeassistant.components.onboarding import (
    STORAGE_KEY as ONBOARDING_KEY,
    STORAGE_VERSION as ONBOARDING_VERSION,
    const as onboarding_const,
)
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util


async def _prepare(args: argparse.Namespace) -> None:
    hass = HomeAssistant(str(args.config_dir))
    # Same bootstrap as Home Assistant's `hass --script auth`.
    hass.config_entries = ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    dr.async_setup(hass)
    await asyncio.gather(dr.async_load(hass), er.async_load(hass))
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    provider = hass.auth.auth_providers[0]
    assert isinstance(provider, hass_auth.HassAuthProvider)
    await provider.async_initialize()

    if any(user.is_owner for user in await hass.auth.async_get_users()):
        print(f"prepare: owner user exists already (login {args.username!r} unchanged)")
    else:
        # The first user created becomes the owner, as in onboarding.
        user = await hass.auth.async_create_user(args.name, group_ids=[GROUP_ID_ADMIN])
        await provider.async_add_auth(args.username, args.password)
        credentials = await provider.async_get_or_create_credentials(
            {"username": args.username}
        )
        await hass.auth.async_link_user(user, credentials)
        print(f"prepare: created owner {args.name!r} (login {args.username!r})")

    onboarding: Store[dict[str, list[str]]] = Store(
        hass, ONBOARDING_VERSION, ONBOARDING_KEY, private=True
    )
    await onboarding.async_save({"done": list(onboarding_const.STEPS)})

    http: Store[dict[str, object]] = Store(
        hass,
        http_config.STORAGE_VERSION,
        http_config.STORAGE_KEY,
        minor_version=http_config.STORAGE_MINOR_VERSION,
        private=True,
    )
    stable = {
        **http_config.HTTP_STORAGE_SCHEMA(
            {"server_host": [args.host], "server_port": args.port}
        ),
        http_config.HTTP_CONFIG_CREATED_AT: dt_util.utcnow().isoformat(),
        http_config.HTTP_CONFIG_ERROR: None,
        http_config.HTTP_CONFIG_ERROR_MESSAGE: None,
    }
    await http.async_save(
        {
            http_config.KEY_STABLE: stable,
            http_config.KEY_PENDING: None,
            http_config.KEY_YAML_MIGRATION_DONE: True,
        }
    )

    # The auth store saves users with a delay; a full stop runs the final write.
    # (force: this HomeAssistant object was never started, so a plain
    # async_stop() would return at once and the new user would be lost.)
    await hass.async_stop(force=True)


def main() -> None:
    """Parse the arguments and prepare the directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--name", default="Developer")
    parser.add_argument("--username", default="dev")
    parser.add_argument("--password", default="dev")
    args = parser.parse_args()
    args.config_dir = args.config_dir.resolve()
    (args.config_dir / ".storage").mkdir(parents=True, exist_ok=True)
    asyncio.run(_prepare(args), loop_factory=runner.create_event_loop)


if __name__ == "__main__":
    main()
