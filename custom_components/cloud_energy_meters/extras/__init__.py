"""A cloud's own additions to the generic Home Assistant layer, found by provider key.

The generic modules (config flow, setup) name no cloud: they ask here what a cloud
adds to them — flow steps of its own, subentries, actions, what its refusals mean.
Adding a cloud: its provider module, its simulator module, optionally an extras
module registered below, and its strings.
"""

from .base import NONE, Extras, SignInFlow, Step
from .copper import EXTRAS as COPPER
from .energydata import EXTRAS as ENERGYDATA
from .flexmeasures import EXTRAS as FLEXMEASURES

EXTRAS: dict[str, Extras] = {
    extras.key: extras for extras in (COPPER, ENERGYDATA, FLEXMEASURES)
}
"""Provider key → what that cloud adds."""


def extras_of(provider_key: str) -> Extras:
    """Return what a cloud adds (NONE for a cloud that adds nothing)."""
    return EXTRAS.get(provider_key, NONE)


def extra_step(step_id: str) -> Step | None:
    """Return the cloud's own flow step of this id, if a cloud has one."""
    for extras in EXTRAS.values():
        if step_id in extras.steps:
            return extras.steps[step_id]
    return None


__all__ = ["EXTRAS", "Extras", "SignInFlow", "Step", "extra_step", "extras_of"]
