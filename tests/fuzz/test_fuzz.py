"""Every endpoint of every cloud survives hostile answers (hypothesis, a fixed seed).

Each example serves one mutated answer through the real transport over loopback and
asserts that the call returns contract-valid data or raises a ProviderError, within a
wall-clock bound and a bounded number of requests. The budget keeps the whole module
near a minute and a half under `pytest -n 3` on a 2-core machine; scripts/fuzz runs the
same harness longer. Select with `-m fuzz`, leave out with `-m "not fuzz"`.
"""

import pytest

from .endpoints import find, names
from .harness import explore, running

pytestmark = [
    pytest.mark.fuzz,
    # Hypothesis 6.170 on Python 3.14 warns about its own PRNG's reference count.
    pytest.mark.filterwarnings("ignore:It looks like `register_random`"),
]

EXAMPLES = 100
"""Examples per endpoint in the suite (scripts/fuzz --examples N for more)."""
SEED = 20_260_409
"""The suite's fixed seed: the same examples on every run."""


@pytest.mark.parametrize(
    ("cloud", "name"), names(), ids=[f"{c}:{n}" for c, n in names()]
)
@pytest.mark.usefixtures("loopback")
def test_hostile_answers(cloud: str, name: str) -> None:
    """The endpoint's call returns valid data or a ProviderError, whatever it gets."""
    endpoint = find(cloud, name)
    with running([cloud]) as (runner, harness):
        explore(
            harness.run_in(runner, cloud),
            endpoint,
            examples=EXAMPLES,
            seed=SEED,
            raise_failures=True,
        )
