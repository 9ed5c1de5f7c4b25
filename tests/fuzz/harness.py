"""One fuzz example end to end, its outcome, and the hypothesis driver.

The harness starts the simulator and the fuzz server once and reuses them for every
example; each example gets a fresh provider (its own token and limiter, so a pause
asked by one answer never leaks into the next) talking to the fuzz server, arms the
drawn mutation for the endpoint's path, runs the call under a wall-clock bound, and
judges what came back:

- ok: the result passes the oracle (contract.py); error: a ProviderError (a RateLimited
  must still ask a bounded wait);
- crash: any other exception; hang: the call outlived HANG_SECONDS; violation: the
  oracle refused the result, or the call sent more requests than its bound.
"""

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
import reprlib
import traceback
from typing import Any
import zlib

import aiohttp
from hypothesis import HealthCheck, Phase, example, given, seed as with_seed, settings

from custom_components.cloud_energy_meters.providers.copper import (
    code_from,
    sign_in_link,
)
from custom_components.cloud_energy_meters.providers.errors import ProviderError
from custom_components.cloud_energy_meters.providers.provider import (
    AccountState,
    Provider,
)
from tests.provider_factory import build_provider, provider_class
from tests.simulator import Simulator, copper

from . import contract
from .endpoints import CLOUDS, FLEXMEASURES_SERVER, Context, Endpoint, span
from .mutations import CLASSICS, Answer, Mutation, mutations
from .server import FuzzServer

HANG_SECONDS = 15.0
"""A call that takes longer hangs (the transport's own timeout is 30 s per request,
but the fuzz server always answers at once)."""
MAX_WAIT = 0.5
"""The limiter's longest wait in the fuzz (the real policy waits up to 120 s for a
Retry-After and retries): longer waits end in RateLimited, which the oracle checks."""
OWN_CODE = "custom_components/cloud_energy_meters/"


def request_bound(baseline: int) -> int:
    """Return how many requests a call may send when its normal run sends `baseline`.

    Room for retries after 429 (3 tries), a renewed token and a few extra items; a
    list repeating one id thousands of times goes far beyond it.
    """
    return 4 * baseline + 10


_short = reprlib.Repr(maxstring=60, maxother=80, maxlist=6, maxtuple=6, maxdict=4)


def describe(mutation: Mutation, answers: list[Answer]) -> str:
    """Describe what the mutation did to the first answer it changed, shortly."""
    first = " (first request only)" if mutation.first_only else ""
    if not answers:
        ops = "; ".join(_short.repr(op) for op in mutation.ops)
        return f"{ops}{first} (the path was not requested)"
    answer = answers[0]
    content_type = answer.headers.get("Content-Type", "-")
    retry = answer.headers.get("Retry-After")
    retry_after = f" Retry-After: {retry!r}" if retry is not None else ""
    drop = f", cut after {answer.drop_after} B" if answer.drop_after is not None else ""
    return (
        f"{'; '.join(answer.notes)}{first} => {answer.status} {content_type}"
        f"{retry_after} {len(answer.body)} B {_short.repr(answer.body[:120])}{drop}"
    )


def where(error: BaseException) -> str:
    """Return the innermost frame of our code the error passed (else the innermost)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if OWN_CODE in f.filename.replace("\\", "/")]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = frame.filename.replace("\\", "/")
    short = path.split(OWN_CODE)[-1] if OWN_CODE in path else path.rsplit("/", 1)[-1]
    return f"{short}:{frame.lineno} {frame.name}"


@dataclass(slots=True)
class Outcome:
    """What one example did."""

    kind: str
    """ok, error (a ProviderError), crash, hang or violation."""
    failure: str = ""
    """The failure class: exception type and where, or the rule broken."""
    detail: str = ""
    requests: int = 0
    payload: str = ""
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        """Tell whether the example broke the property."""
        return self.kind in ("crash", "hang", "violation")


class Harness:
    """The simulator, the fuzz server and a session, kept for many examples."""

    def __init__(self, clouds: Iterable[str] | None = None) -> None:
        """Fuzz these clouds (all by default)."""
        self.clouds = list(clouds or CLOUDS)
        self.simulator = Simulator()
        self.simulator.climkit.min_interval = 0
        # Thousands of examples share one Copper account: its budgets are not fuzzed.
        self.simulator.copper.hourly_limit = self.simulator.copper.daily_limit = 10**9
        # Each example's provider signs in afresh with the same refresh token: the
        # answers are fuzzed, not Auth0's rotation (tests/copper tests that).
        self.simulator.copper.rotate_refresh_tokens = False
        # FlexMeasures' 500 a minute per user is not fuzzed either.
        self.simulator.flexmeasures.enforce_rate_limits = False
        self.credentials: dict[str, dict[str, Any]] = {
            cloud: {"server": FLEXMEASURES_SERVER}
            for cloud in self.clouds
            if CLOUDS[cloud].provider_key == "flexmeasures"
        }
        # Each knob a Cloud sets, with the simulator's own value (the other Clouds').
        self.knobs: dict[tuple[str, str], Any] = {
            (found.provider_key, name): getattr(
                getattr(self.simulator, found.provider_key), name
            )
            for found in CLOUDS.values()
            for name, _ in found.simulator
        }
        self.server = FuzzServer("")
        self.session: aiohttp.ClientSession | None = None
        self.inventories: dict[str, Any] = {}
        self.baselines: dict[tuple[str, str], int] = {}
        self.hang_seconds = HANG_SECONDS

    async def start(self) -> None:
        """Start the simulator and the fuzz server; discover each cloud normally."""
        self.server.upstream = (await self.simulator.start()).rstrip("/")
        await self.server.start()
        self.session = aiohttp.ClientSession()
        if "copper_app" in self.clouds:
            self.credentials["copper_app"] = await self._copper_app_credentials()
        for cloud in self.clouds:
            self.server.arm(None, None)
            self.configure(cloud)
            self.inventories[cloud] = await self.provider(cloud).async_discover(
                CLOUDS[cloud].sites
            )

    async def stop(self) -> None:
        """Stop everything started."""
        if self.session is not None:
            await self.session.close()
        await self.server.stop()
        await self.simulator.stop()

    async def _copper_app_credentials(self) -> dict[str, Any]:
        """Sign the Copper app demo user in (straight at the simulator)."""
        assert self.session is not None
        auth = f"{self.simulator.base_url}{copper.AUTH_PREFIX}"
        link, verifier = sign_in_link(auth)
        form = {"email": copper.DEMO_EMAIL, "otp": copper.DEMO_EMAIL_CODE}
        async with self.session.post(link, data=form, allow_redirects=False) as answer:
            code = code_from(answer.headers["Location"])
        assert code is not None
        signing = build_provider(
            "copper", self.session, api_url=self.simulator.url("copper")
        )
        token = await signing.async_exchange(code, verifier)
        return {
            "client_id": "",
            "client_secret": "",
            "enterprise_id": "",
            "refresh_token": token,
            "user": f"app:{copper.HOME_PREMISE_ID}",
        }

    def configure(self, cloud: str) -> None:
        """Set the simulator's knobs as the cloud wants them (others: their default)."""
        wanted = dict(CLOUDS[cloud].simulator)
        for (key, name), default in self.knobs.items():
            if key == CLOUDS[cloud].provider_key:
                setattr(getattr(self.simulator, key), name, wanted.get(name, default))

    def provider(self, cloud: str) -> Provider:
        """Return a fresh provider of the cloud's demo account, through the fuzz server."""
        key = CLOUDS[cloud].provider_key
        policy = replace(provider_class(key).policy, min_interval=0, max_wait=MAX_WAIT)
        root = self.simulator.url(key).removeprefix(self.simulator.base_url)
        return build_provider(  # type: ignore[no-any-return]
            key,
            self.session,
            api_url=self.server.base_url + root,
            state=AccountState.for_policy(policy),
            **self.credentials.get(cloud, {}),
        )

    def context(self, cloud: str) -> Context:
        """Return a fresh context for one call."""
        start, end = span()
        return Context(
            provider=self.provider(cloud),
            inventory=self.inventories[cloud],
            sites=CLOUDS[cloud].sites,
            start=start,
            end=end,
        )

    async def baseline(self, cloud: str, endpoint: Endpoint) -> int:
        """Run the call unmutated once: it must pass; return its request count."""
        key = (cloud, endpoint.name)
        if key not in self.baselines:
            outcome = await self._run(cloud, endpoint, None, bound=None)
            if outcome.kind != "ok":
                raise AssertionError(
                    f"{cloud} {endpoint.name} fails without mutation: "
                    f"{outcome.kind} {outcome.failure} {outcome.detail}"
                )
            self.baselines[key] = outcome.requests
        return self.baselines[key]

    async def example(
        self, cloud: str, endpoint: Endpoint, mutation: Mutation
    ) -> Outcome:
        """Run the call once with the mutation armed; judge the outcome."""
        bound = request_bound(await self.baseline(cloud, endpoint))
        return await self._run(cloud, endpoint, mutation, bound=bound)

    async def _run(
        self,
        cloud: str,
        endpoint: Endpoint,
        mutation: Mutation | None,
        *,
        bound: int | None,
    ) -> Outcome:
        ctx = self.context(cloud)
        self.configure(cloud)
        self.server.arm(endpoint.path if mutation else None, mutation)
        outcome = await self._judge(endpoint, ctx)
        outcome.requests = len(self.server.requests)
        if mutation is not None:
            outcome.payload = describe(mutation, self.server.mutated)
        self.server.arm(None, None)
        # Amplification outranks what the answer then broke (a list of repeats).
        if bound is not None and outcome.requests > bound and outcome.kind != "crash":
            outcome.kind = "violation"
            outcome.failure = "request amplification"
            outcome.detail = f"{outcome.requests} requests (bound {bound})"
        return outcome

    def run_in(self, runner: asyncio.Runner, cloud: str) -> Run:
        """Return the function that runs one example of the cloud in `runner`."""

        def run(endpoint: Endpoint, mutation: Mutation) -> Outcome:
            return runner.run(self.example(cloud, endpoint, mutation))

        return run

    async def _judge(self, endpoint: Endpoint, ctx: Context) -> Outcome:
        try:
            async with asyncio.timeout(self.hang_seconds) as deadline:
                result = await endpoint.call(ctx)
        except TimeoutError as err:
            if deadline.expired():
                stuck = err.__context__ or err
                return Outcome("hang", f"hang at {where(stuck)}", "", error=err)
            return _crash(err)
        except ProviderError as err:
            try:
                contract.check_rate_limited(err)
            except contract.ContractViolation as violation:
                return _violation(violation, where(err))
            return Outcome("error", type(err).__name__, str(err)[:200])
        except Exception as err:  # noqa: BLE001  (any other exception is the finding)
            return _crash(err)
        try:
            endpoint.check(result, ctx)
        except contract.ContractViolation as violation:
            return _violation(violation, "")
        return Outcome("ok")


type Run = Callable[[Endpoint, Mutation], Outcome]


@contextmanager
def running(
    clouds: Iterable[str] | None = None,
) -> Iterator[tuple[asyncio.Runner, Harness]]:
    """Start a harness in an event loop of its own; stop both at the end.

    The loop is driven from synchronous code (hypothesis calls the property once per
    example), so the servers stay up between examples.
    """
    with asyncio.Runner() as runner:
        harness = Harness(clouds)
        try:
            runner.run(harness.start())
            yield runner, harness
        finally:
            runner.run(harness.stop())


def _crash(err: BaseException) -> Outcome:
    return Outcome(
        "crash", f"{type(err).__name__} at {where(err)}", str(err)[:200], error=err
    )


def _violation(violation: contract.ContractViolation, place: str) -> Outcome:
    failure = f"{violation.rule} ({place})" if place else violation.rule
    return Outcome("violation", failure, violation.detail[:200], error=violation)


class FuzzFailure(AssertionError):
    """An example broke the property (raised for hypothesis to shrink)."""


_FAILURE_TYPES: dict[str, type[FuzzFailure]] = {}


def failure_type(failure: str) -> type[FuzzFailure]:
    """Return one exception type per failure class.

    Hypothesis tells failures apart by exception type and place: with one type per
    class, shrinking keeps the class it started from.
    """
    if failure not in _FAILURE_TYPES:
        _FAILURE_TYPES[failure] = type("FuzzFailure", (FuzzFailure,), {})
    return _FAILURE_TYPES[failure]


@dataclass(slots=True)
class Tally:
    """What the examples of one endpoint did, by outcome and failure class."""

    examples: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    classes: dict[str, tuple[int, str, str, str]] = field(default_factory=dict)
    """failure class -> (count, kind, detail, shortest payload)."""
    last: Outcome | None = None
    """The last failure raised (after shrinking: the minimal one)."""

    def add(self, outcome: Outcome) -> None:
        """Count one example."""
        self.examples += 1
        self.kinds[outcome.kind] = self.kinds.get(outcome.kind, 0) + 1
        if outcome.failed:
            count, _, detail, payload = self.classes.get(
                outcome.failure, (0, outcome.kind, outcome.detail, outcome.payload)
            )
            if len(outcome.payload) < len(payload):
                detail, payload = outcome.detail, outcome.payload
            self.classes[outcome.failure] = (count + 1, outcome.kind, detail, payload)


def explore(
    run: Run,
    endpoint: Endpoint,
    *,
    examples: int,
    seed: int,
    raise_failures: bool | str,
    tally: Tally | None = None,
) -> Tally:
    """Draw `examples` mutations for the endpoint and run each with `run`.

    With `raise_failures` the first failure is raised and hypothesis shrinks it to a
    minimal payload (the test); given a failure class, only failures of that class are
    (scripts/fuzz shrinking one class); without, every example is only counted in the
    tally (scripts/fuzz).
    """
    tally = tally if tally is not None else Tally()
    phases: tuple[Phase, ...] = (Phase.explicit, Phase.generate)
    if raise_failures:
        phases = (*phases, Phase.shrink)

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    # Each endpoint draws its own examples from the one seed.
    @with_seed(zlib.crc32(f"{seed}:{endpoint.name}:{endpoint.path}".encode()))
    @given(mutation=mutations(endpoint.body))
    def prop(mutation: Mutation) -> None:
        outcome = run(endpoint, mutation)
        tally.add(outcome)
        if outcome.failed and (
            raise_failures is True or raise_failures == outcome.failure
        ):
            tally.last = outcome
            raise failure_type(outcome.failure)(
                f"{outcome.kind}: {outcome.failure}: {outcome.detail}\n"
                f"payload: {outcome.payload}"
            ) from outcome.error

    for classic in CLASSICS:
        prop = example(mutation=classic)(prop)
    prop()
    return tally
