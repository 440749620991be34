"""One added-time ratio measured in short, tightly interleaved batches.

``python -m benchmarks.interleaved [--cases timing,timing-floor,B] [--batch N]
[--rounds R]`` runs the three in-process cases (``x``, ``y``, the base ``b``) one short
batch each per round, in an order rotated every round, and prints the median over the
rounds of ``(x - b) / (y - b)``: for the default cases, the timing layer's added time
over its lower bound's (the ``timing_over_floor`` target).

Why beside ``python -m benchmarks``: on a shared two-core VM a case's batch time can
switch between two speeds (``B`` at 1.0 or at 1.6-1.9 µs within one run). The full run
puts several batches between ``B`` and the timing cases, and a median taken per case
can land in one mode for ``B`` and the other for the timing cases, moving a ratio of
two microsecond differences by 0.3 either way. Here the three batches of a round run
within milliseconds of each other, so each round's ratio compares like with like.

A diagnosis tool; ``python -m benchmarks`` is what publishes.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from benchmarks import apps
from benchmarks.cases import CASES
from benchmarks.driver import timed_batch
from benchmarks.inprocess import new_loop


def added_ratios(x: list[float], y: list[float], b: list[float]) -> list[float]:
    """Per round: what ``x`` adds over ``b``, as a multiple of what ``y`` adds."""
    return [(xi - bi) / (yi - bi) for xi, yi, bi in zip(x, y, b, strict=True) if yi != bi]


async def rounds_of(
    apps_by_name: dict[str, Any],
    scopes: dict[str, dict[str, Any]],
    status: dict[str, int],
    batch: int,
    rounds: int,
) -> dict[str, list[float]]:
    """µs per request of each case, one batch per round, order rotated per round;
    a wrong response raises ``RuntimeError`` (a run with one prints no ratio)."""
    names = list(apps_by_name)
    for n in names:  # warm-up, untimed
        await timed_batch(apps_by_name[n], scopes[n], batch, status[n])
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            seconds, bad = await timed_batch(apps_by_name[n], scopes[n], batch, status[n])
            if bad:
                raise RuntimeError(f"{n}: {bad} of {batch} responses were wrong")
            samples[n].append(seconds / batch * 1e6)
    return samples


async def measure(names: list[str], batch: int, rounds: int) -> dict[str, list[float]]:
    """Build the named cases' apps and time them with :func:`rounds_of`."""
    by_name = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {sorted(by_name)}")
    built = {n: apps.build_app(by_name[n].app) for n in names}
    scopes = {n: by_name[n].request.scope() for n in names}
    status = {n: by_name[n].request.status for n in names}
    try:
        return await rounds_of(built, scopes, status, batch, rounds)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="timing,timing-floor,B", help="x,y,base")
    parser.add_argument("--batch", type=int, default=3000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=101)
    args = parser.parse_args(argv)
    names = args.cases.split(",")
    if len(names) != 3:
        parser.error("--cases takes three case names: x,y,base")
    loop, loop_name = new_loop()
    try:
        with apps.django_environment():
            samples: dict[str, Any] = loop.run_until_complete(
                measure(names, args.batch, args.rounds)
            )
    finally:
        loop.close()
    x, y, b = (samples[n] for n in names)
    per = added_ratios(x, y, b)
    quart = statistics.quantiles(per, n=4) if len(per) > 1 else per * 3
    print(f"{loop_name}; {args.rounds} rounds of {args.batch} requests per case")
    for n in names:
        print(f"  {n}: median {statistics.median(samples[n]):.3f} µs per request")
    print(
        f"({names[0]} - {names[2]}) / ({names[1]} - {names[2]}), per round: median "
        f"{statistics.median(per):.3f}x, quartiles {quart[0]:.3f}x-{quart[2]:.3f}x"
    )


if __name__ == "__main__":
    main()
