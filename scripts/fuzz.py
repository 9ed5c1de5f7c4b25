"""Fuzz the provider layer longer than the test suite does, and list what breaks it.

The same harness as tests/fuzz (the simulator behind a mutating loopback proxy, the
real transport, the contract oracle), without pytest's budget: N examples per endpoint
per cloud. Prints one table row per endpoint (examples, crashes, hangs, contract
violations, failure classes), then each failure class with its count and a minimal
payload (hypothesis shrinks one example of each class; --no-shrink keeps the shortest
one seen). Exits 1 if anything failed.

    scripts/fuzz [--examples 200] [--cloud climkit] [--endpoint auth] [--seed 1]
                 [--no-shrink] [--findings findings.md]
"""

import argparse
import contextlib
import logging
from pathlib import Path
import random
import sys
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz.endpoints import CLOUDS, Endpoint  # noqa: E402
from tests.fuzz.harness import FuzzFailure, Tally, explore, running  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per endpoint")
    parser.add_argument(
        "--cloud", action="append", choices=sorted(CLOUDS), help="repeatable"
    )
    parser.add_argument(
        "--endpoint", action="append", help="an endpoint name, or part of one"
    )
    parser.add_argument("--seed", type=int, help="default: a random one, printed")
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument("--findings", type=Path, help="write the classes as Markdown")
    return parser.parse_args()


def _chosen(cloud: str, patterns: list[str] | None) -> list[Endpoint]:
    endpoints = CLOUDS[cloud].endpoints
    if not patterns:
        return list(endpoints)
    return [e for e in endpoints if any(p in e.name for p in patterns)]


def main() -> int:
    """Run the fuzz and print the tables; return the exit status."""
    args = _arguments()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    logging.basicConfig(level=logging.CRITICAL)
    clouds = args.cloud or list(CLOUDS)
    print(f"scripts/fuzz --examples {args.examples} --seed {seed}")  # noqa: T201
    rows: list[tuple[str, str, Tally, float]] = []
    findings: list[tuple[str, str, str, int, str, str, str]] = []
    started = time.monotonic()
    with running(clouds) as (runner, harness):
        for cloud in clouds:
            run = harness.run_in(runner, cloud)
            for endpoint in _chosen(cloud, args.endpoint):
                began = time.monotonic()
                tally = explore(
                    run,
                    endpoint,
                    examples=args.examples,
                    seed=seed,
                    raise_failures=False,
                )
                rows.append((cloud, endpoint.name, tally, time.monotonic() - began))
                for failure, (count, kind, detail, payload) in tally.classes.items():
                    if not args.no_shrink:
                        detail, payload = _shrink(
                            run, endpoint, args.examples, seed, failure, detail, payload
                        )
                    findings.append(
                        (cloud, endpoint.name, kind, count, failure, detail, payload)
                    )
    _print_table(rows)
    _print_findings(findings)
    total = time.monotonic() - started
    examples = sum(tally.examples for *_, tally, _ in rows)
    print(f"\n{examples} examples in {total:.0f} s")  # noqa: T201
    if args.findings:
        args.findings.write_text(_markdown(findings, args.examples, seed, total))
    return 1 if findings else 0


def _shrink(
    run: object,
    endpoint: Endpoint,
    examples: int,
    seed: int,
    failure: str,
    detail: str,
    payload: str,
) -> tuple[str, str]:
    """Replay the seed raising this class only: hypothesis shrinks it."""
    tally = Tally()
    with contextlib.suppress(FuzzFailure):
        explore(
            run,  # type: ignore[arg-type]
            endpoint,
            examples=examples,
            seed=seed,
            raise_failures=failure,
            tally=tally,
        )
    if tally.last is not None and tally.last.failure == failure:
        return tally.last.detail, tally.last.payload
    return detail, payload


def _print_table(rows: list[tuple[str, str, Tally, float]]) -> None:
    head = (
        "cloud",
        "endpoint",
        "examples",
        "crashes",
        "hangs",
        "violations",
        "classes",
        "s",
    )
    lines = [head] + [
        (
            cloud,
            name,
            str(tally.examples),
            str(tally.kinds.get("crash", 0)),
            str(tally.kinds.get("hang", 0)),
            str(tally.kinds.get("violation", 0)),
            str(len(tally.classes)),
            f"{seconds:.1f}",
        )
        for cloud, name, tally, seconds in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            )
        )  # noqa: T201


def _print_findings(findings: list[tuple[str, str, str, int, str, str, str]]) -> None:
    if not findings:
        print("\nno failure")  # noqa: T201
        return
    print(f"\n{len(findings)} failure classes:")  # noqa: T201
    for cloud, name, kind, count, failure, detail, payload in findings:
        print(f"\n[{cloud} {name}] {kind} x{count}: {failure}")  # noqa: T201
        print(f"  detail:  {detail}")  # noqa: T201
        print(f"  payload: {payload}")  # noqa: T201


def _markdown(
    findings: list[tuple[str, str, str, int, str, str, str]],
    examples: int,
    seed: int,
    seconds: float,
) -> str:
    lines = [
        "# Fuzz findings",
        "",
        f"`scripts/fuzz --examples {examples} --seed {seed}`: {len(findings)} "
        f"failure classes in {seconds:.0f} s.",
        "",
        "## By class (every endpoint it hit)",
        "",
        "| failure | kind | examples | where |",
        "|---|---|---|---|",
    ]
    classes: dict[str, tuple[str, int, list[str]]] = {}
    for cloud, name, kind, count, failure, *_ in findings:
        _, total, places = classes.get(failure, (kind, 0, []))
        classes[failure] = (kind, total + count, [*places, f"{cloud} {name}"])
    lines.extend(
        f"| {_cell(failure)} | {kind} | {total} | {', '.join(places)} |"
        for failure, (kind, total, places) in sorted(
            classes.items(), key=lambda item: -item[1][1]
        )
    )
    lines += [
        "",
        "## Each class at each endpoint, with a minimal payload",
        "",
        "| cloud | endpoint | kind | count | failure | detail | minimal payload |",
        "|---|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {cloud} | {name} | {kind} | {count} | {_cell(failure)} | "
        f"{_cell(detail)} | {_cell(payload)} |"
        for cloud, name, kind, count, failure, detail, payload in findings
    )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'").replace("\n", " ") + "`"


if __name__ == "__main__":
    sys.exit(main())
