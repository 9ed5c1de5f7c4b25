"""The cloud layer: one module per cloud behind one contract (provider.Provider).

Nothing in this package imports Home Assistant: it could be published as a library of
its own, and its tests run against the simulator without Home Assistant.
"""

from .climkit import ClimkitProvider
from .copper import CopperProvider
from .energydata import EnergydataProvider
from .flexmeasures import FlexMeasuresProvider
from .locus import LocusProvider
from .provider import AccountState, Provider

PROVIDERS: dict[str, type[Provider]] = {
    provider.key: provider
    for provider in (
        ClimkitProvider,
        CopperProvider,
        EnergydataProvider,
        FlexMeasuresProvider,
        LocusProvider,
    )
}
"""Provider key (as in config entries and statistic ids) → provider class."""

__all__ = ["PROVIDERS", "AccountState", "Provider"]
