"""``python -m benchmarks [--quick] [--no-e2e] [--out DIR] [--publish] [--strict]``.

Prints Markdown tables on stdout, then one summary line of the targets (each measured
against its goal, pass or MISS), and writes ``latest.json`` (raw samples, machine and
versions), ``latest.md``, ``latest.rst`` and PNG plots to ``--out``. ``--publish``
writes the committed copies: ``benchmarks/results/`` and ``docs/_static/bench-*.png``.
Exit status 1 when any request failed (its ratios are then refused); with
``--strict``, 3 when a target was missed (0 otherwise, misses included).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.django_settings"


#: Exit status of ``--strict`` when a target was missed (1 is kept for failed requests).
MISSED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a shorter run (about 2-3 minutes)")
    parser.add_argument("--no-e2e", action="store_true", help="skip uvicorn + wrk")
    parser.add_argument("--out", type=Path, help="output directory (default: a temp dir)")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write benchmarks/results/latest.* and docs/_static/bench-*.png",
    )
    parser.add_argument(
        "--strict", action="store_true", help=f"exit {MISSED} when a target is missed"
    )
    args = parser.parse_args(argv)

    from benchmarks import report, runner, targets

    mode = "quick" if args.quick else "full"
    flags = [f for f, on in (("--quick", args.quick), ("--no-e2e", args.no_e2e)) if on]
    command = " ".join([runner.python_cmd(), "-m", "benchmarks", *flags])
    if args.publish:
        command += " --publish"
    if args.strict:
        command += " --strict"

    def progress(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    progress(f"mode {mode}, e2e {'off' if args.no_e2e else 'on'}")
    result = runner.run(mode=mode, e2e=not args.no_e2e, command=command, progress=progress)
    print(report.render(result, "md"))
    if args.publish:
        out, images = runner.ROOT / "benchmarks" / "results", runner.ROOT / "docs" / "_static"
    else:
        out = args.out or Path(tempfile.gettempdir()) / "middleware_stack-bench"
        images = None
    for path in runner.write(result, out, images):
        progress(f"wrote {path}")
    rows = result["targets"]
    print(targets.summary(rows), flush=True)
    failures = report.failed(result)
    if failures:
        progress(f"{len(failures)} failures: ratios refused")
        return 1
    if args.strict and targets.missed(rows):
        progress(f"--strict: missed {', '.join(targets.missed(rows))}")
        return MISSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
