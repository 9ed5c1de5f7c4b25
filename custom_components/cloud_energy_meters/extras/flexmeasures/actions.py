"""FlexMeasures' actions: post measurements, read sensor data, trigger a schedule."""

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.typing import ConfigType


@callback
def async_setup_actions(hass: HomeAssistant, config: ConfigType) -> None:
    """Register the actions."""
