#!/usr/bin/env python
"""Run Django's own ``asgi``, ``handlers`` and ``middleware`` tests through the stack.

    python scripts/django_suite.py                  # the default labels, through the stack
    python scripts/django_suite.py --clients        # also the test clients' requests
    python scripts/django_suite.py asgi -v 2        # some labels; runtests' verbosity
    python scripts/django_suite.py --checks warn    # the stacks with runtime checks on
    python scripts/django_suite.py --stack-setting ASGI_THREAD_REUSE=False

The tests come from the source distribution of the Django that is installed: pip
downloads it once into a cache directory outside the repository (``$XDG_CACHE_HOME``, else
``~/.cache``, ``/middleware_stack-django-src/<version>``), only ``tests/`` is extracted,
and nothing is installed: the tests run against the installed Django.

Before ``runtests.py`` imports a test module, ``django.core.asgi.get_asgi_application``
is replaced by a function returning ``build_stack(get_asgi_application())``, what a
project's asgi.py does, and asgiref's ``ApplicationCommunicator`` puts the stack around a
bare ``ASGIHandler`` a test builds itself. Django's test settings are left as they are:
the stack reads its ``ASGI_*`` settings lazily and takes the defaults. With
``--clients``, the test clients of :mod:`middleware_stack.test` stand in for Django's,
so the ``handlers`` and ``middleware`` tests' requests cross the stack too, and Django's
``test_client`` and ``test_client_regress`` tests run as well (through our clients, they
test those).

The run passes when the tests that fail are exactly those in ``EXPECTED`` and each fails
as described there: an unlisted failure fails the run, and so does a listed test that
passes (the list has to stay true). A test listed only for the case of response header
names is run again with the names put back in Django's case outside the stack, and must
then pass. docs/django-suite.rst explains every entry.

Exit status: 0 passed, 1 failed, 2 usage, 3 the sdist could not be had (no network).
"""

from __future__ import annotations

import argparse
import ast
import faulthandler
import logging
import os
import re
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django_suite_patch import RUN, id_of, patch_django, run_runtests
from django_suite_sdist import NoSdist, cache_root, django_tests, django_version

DEFAULT_LABELS = ("asgi", "handlers", "middleware")
#: With --clients, also Django's tests of its test clients (through ours, they test ours).
CLIENT_LABELS = ("test_client", "test_client_regress")
EXIT_NO_SDIST = 3  # the sdist is neither cached nor downloadable
ALL = ("5.2", "6.0", "6.1")


@dataclass(frozen=True)
class Expected:
    """A test that fails through the stack, the failure it must fail with, and why."""

    reason: str
    match: str  # a regex the failure's traceback must match
    versions: tuple[str, ...] = ALL  # the Django series it applies to
    clients: bool = False  # only with --clients (the test clients through the stack)
    header_case: bool = False  # passes once the header names are put back in Django's case


_CASE = (
    "The stack lowercases response header names (the boundary does it on purpose, so "
    "outer layers can match them; HTTP header names are case-insensitive and HTTP/2 "
    "requires lowercase). The test compares Django's exact case."
)
#: Test id -> why it fails through the stack. Each is explained in docs/django-suite.rst.
EXPECTED: dict[str, Expected] = {
    "asgi.tests.ASGITest.test_get_asgi_application": Expected(
        _CASE, r"\(b'content-length', b'12'\)", header_case=True
    ),
    "asgi.tests.ASGITest.test_file_response": Expected(
        _CASE, r"KeyError: b'content-(type|length|disposition)'", header_case=True
    ),
    "asgi.tests.ASGITest.test_headers": Expected(
        _CASE, r"\(b'content-length', b'19'\)", header_case=True
    ),
    "asgi.tests.ASGITest.test_asgi_cookies": Expected(
        _CASE,
        r"\(b'Set-Cookie', b'key=value; Path=/'\) not found",
        ("6.0", "6.1"),
        header_case=True,
    ),
    "handlers.tests.SignalsTests.test_request_signals": Expected(
        "Under ASGI, Django sends request_started with scope=, not environ=, and its "
        "ASGIRequest has no .environ: the test is about Django's WSGI handler, which the "
        "sync test client calls and a request through the stack never reaches.",
        r"'ASGIRequest' object has no attribute 'environ'",
        clients=True,
    ),
    "handlers.tests.SignalsTests.test_request_signals_streaming_response": Expected(
        "The stack's test client runs each exchange to its end, as a server does, before "
        "it returns the response: request_finished has fired by then. Django's client "
        "returns a streaming response unread and fires it when the test closes it.",
        r"\['started', 'finished'\] != \['started'\]",
        clients=True,
    ),
    "handlers.tests.HandlerRequestTests.test_async_streaming": Expected(
        "Through ASGI an async iterator is served asynchronously, so Django's warning that "
        "a sync server must consume it synchronously (the WSGI path) is not raised.",
        r"Warning not triggered",
        clients=True,
    ),
    "test_client.tests.ClientTest.test_response_attached_request": Expected(
        "Through the stack, response.wsgi_request is the ASGIRequest Django built, which "
        "has no .environ to compare the client's WSGI-style request dict with.",
        r"'ASGIRequest' object has no attribute 'environ'",
        clients=True,
    ),
    "test_client.tests.ClientTest.test_trace": Expected(
        "The test's view reads request.META['SERVER_PROTOCOL'], which Django's ASGIRequest "
        "does not set (WSGI's environ has it): the view fails under any ASGI server.",
        r"KeyError: 'SERVER_PROTOCOL'",
        clients=True,
    ),
    "handlers.tests.HandlerRequestTests.test_invalid_urls": Expected(
        "An ASGI scope's path is text, percent-decoded as UTF-8 by the server (invalid "
        "bytes become U+FFFD, as uvicorn, hypercorn and daphne do); Django's WSGI handler "
        "re-percent-encodes them from the raw bytes. Django under any ASGI server differs "
        "the same way.",
        r"%EF%BF%BD",
        clients=True,
    ),
}


def parse_setting(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (a Python literal) for ``--stack-setting``; ``ASGI_*`` names only."""
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("ASGI_"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give ASGI_NAME=VALUE, e.g. ASGI_THREAD_REUSE=False"
        )
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be a Python literal") from None


# -- the verdict ---------------------------------------------------------------------------


def default_labels(clients: bool) -> tuple[str, ...]:
    return DEFAULT_LABELS + CLIENT_LABELS if clients else DEFAULT_LABELS


def applicable(version: str, clients: bool) -> dict[str, Expected]:
    series = ".".join(version.split(".")[:2])
    return {
        test_id: e
        for test_id, e in EXPECTED.items()
        if series in e.versions and (clients or not e.clients)
    }


def verdict(version: str, args: argparse.Namespace, labels: list[str], took: float) -> int:
    expected = {} if args.header_case else applicable(version, args.clients)
    failed: dict[str, str] = {}
    skipped: set[str] = set()
    for result in RUN.results:
        for test, trace in [*result.failures, *result.errors]:
            failed.setdefault(id_of(test), trace)
        for test in result.unexpectedSuccesses:  # Django's own expectedFailure tests
            failed.setdefault(id_of(test), "passed, though Django expects it to fail")
        skipped.update(id_of(test) for test, _ in result.skipped)
    problems: list[str] = []
    if not RUN.results:
        problems.append("runtests.py ran no test suite (did it fail before running tests?)")
    asgi_tests = sys.modules.get("asgi.tests")
    if asgi_tests is not None:
        if asgi_tests.get_asgi_application is not RUN.patched:
            problems.append("asgi.tests imported get_asgi_application before the patch")
        if not RUN.stacks:
            problems.append("no test got a stack from the patched get_asgi_application")
    unexpected = sorted(set(failed) - set(expected))
    timed_out = [t for t in unexpected if TIMED_OUT.search(failed[t])]
    if timed_out and not args.rerun and rerun_alone(timed_out, args):
        unexpected = [t for t in unexpected if t not in timed_out]
        for test_id in timed_out:
            print(f"  timed out, then passed when run again alone: {test_id}")
    problems += [f"unexpected failure: {test_id}" for test_id in unexpected]
    as_listed = []
    for test_id, entry in sorted(expected.items()):
        if test_id in failed and re.search(entry.match, failed[test_id]):
            as_listed.append(test_id)
        elif test_id in failed:
            problems.append(f"fails, but not as listed (/{entry.match}/): {test_id}")
            unexpected.append(test_id)
        elif test_id in skipped:
            problems.append(f"listed as failing, but skipped: {test_id}")
        elif test_id in RUN.ran:
            problems.append(f"listed as failing, but passed (update EXPECTED): {test_id}")
        elif tuple(labels) == default_labels(args.clients):
            problems.append(f"listed as failing, but not run (renamed?): {test_id}")

    ran = Counter(test_id.split(".")[0] for test_id in RUN.ran)
    through = Counter(test_id.split(".")[0] for test_id in RUN.through if test_id)
    mode = "header case restored" if args.header_case else "clients" if args.clients else "stack"
    print("\n" + "=" * 78)
    print(
        f"django_suite: Django {version} ({mode}, checks={args.checks or 'settings'}): "
        f"{len(RUN.ran)} tests in {took:.1f}s, {len(failed)} failed ({len(as_listed)} as "
        f"listed), {len(skipped)} skipped; {len(RUN.stacks)} stacks built"
    )
    for label in sorted(ran):
        print(f"  {label}: {through[label]} of {ran[label]} tests sent requests through a stack")
    for before, waited, busy in RUN.settled:
        late = "still running, left behind" if busy else "finished"
        print(f"  the requests of {before} ended before their work: {late} after {waited:.2f}s")
    for summary, n in sorted(boundaries(RUN.stacks).items()):
        print(f"  {n} stacks: {summary}")
    for summary, n in sorted(boundaries(RUN.client_stacks.values()).items()):
        print(f"  {n} test client stacks: {summary}")
    if args.verbosity >= 2:
        for test_id in RUN.ran:
            if test_id not in RUN.through:
                print(f"    not through a stack: {test_id}")
    for test_id in as_listed:
        print(f"  expected failure: {test_id}\n      {expected[test_id].reason}")
    for test_id in unexpected:
        print(f"\n--- unexpected failure: {test_id}\n{failed[test_id]}")
    problems += runtime_findings()
    recheck = [t for t in as_listed if expected[t].header_case]
    if recheck and not problems:
        problems += rerun_with_header_case(recheck, args)
    if problems:
        print("\ndjango_suite: FAILED")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("django_suite: OK (every failure is a documented difference)")
    return 0


def boundaries(stacks: Iterable[Any]) -> Counter[str]:
    """What ``stacks`` do at the Django boundary, as ``describe()`` says it."""
    return Counter(
        stack.boundary.summary() if hasattr(stack, "boundary") else type(stack).__name__
        for stack in stacks
    )


def runtime_findings() -> list[str]:
    """With runtime checks on: protocol findings may name only the tests themselves.

    Django's tests play the ASGI server, and some send what no server would (a scope
    without ``query_string``, a made-up message type): the checks report those against
    "the ASGI server". A finding against Django's handler or the stack is a problem.
    """
    counts: Counter[str] = Counter()
    rules: dict[str, Counter[str]] = {}
    for stack in RUN.stacks:
        for label, stats in stack.check_report().items():
            counts[label] += stats["violations"]
            rules.setdefault(label, Counter()).update(stats["rules"])
    if not RUN.stacks or RUN.stacks[0].checks == "off":
        return []
    server = "the ASGI server"
    shown = ", ".join(f"{rule}x{n}" for rule, n in sorted(rules.get(server, Counter()).items()))
    print(f"  runtime checks: {counts[server]} findings against the tests as server ({shown})")
    return [
        f"runtime checks: {n} protocol finding(s) against {label}: {dict(rules[label])}"
        for label, n in sorted(counts.items())
        if n and label != server
    ]


#: How a Django test that waited too long for a message ends (asgiref's
#: ``ApplicationCommunicator.receive_output`` waits 1 s by default).
TIMED_OUT = re.compile(r"\b(asyncio\.|concurrent\.futures\.)?TimeoutError\b")


def rerun_alone(test_ids: list[str], args: argparse.Namespace) -> bool:
    """Run tests that failed only by timing out once more, alone; True if they pass.

    Django's own async tests wait one second for each message. On a loaded 2-core
    machine (CI runs two legs at once) a first request through a fresh worker thread can
    take longer; Django's tests are timed for its own CI. A test that times out again
    when it has the machine to itself is a real failure.
    """
    print(f"\ndjango_suite: timed out, running again alone: {' '.join(test_ids)}")
    return run_again(["--rerun", *(["--clients"] if args.clients else [])], test_ids, args)


def run_again(flags: list[str], test_ids: list[str], args: argparse.Namespace) -> bool:
    """Run this script on ``test_ids`` alone, with ``flags`` and this run's options;
    True if it passes."""
    command = [sys.executable, os.path.abspath(__file__), *flags, *test_ids]
    command += ["--timeout", str(args.timeout)]
    if args.cache:
        command += ["--cache", str(args.cache)]
    if args.checks:
        command += ["--checks", args.checks]
    for name, value in args.stack_setting:
        command += ["--stack-setting", f"{name}={value!r}"]
    sys.stdout.flush()
    return subprocess.run(command).returncode == 0


def rerun_with_header_case(test_ids: list[str], args: argparse.Namespace) -> list[str]:
    """Run ``test_ids`` again with Django's header case restored: they must pass."""
    print(f"\ndjango_suite: again with Django's header case restored: {' '.join(test_ids)}")
    if not run_again(["--header-case"], test_ids, args):
        return ["with Django's header case restored, the tests listed for it still fail"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "labels",
        nargs="*",
        help=f"runtests labels (default: {' '.join(DEFAULT_LABELS)}; with --clients also "
        f"{' '.join(CLIENT_LABELS)})",
    )
    parser.add_argument("-v", "--verbosity", type=int, default=1, choices=[0, 1, 2, 3])
    parser.add_argument(
        "--checks",
        choices=["off", "warn"],
        help="runtime checks of the stacks get_asgi_application returns (default: the "
        "settings', off). Not strict: Django's tests send scopes no server would, which "
        "strict checks refuse. The --clients test clients check strictly anyway.",
    )
    parser.add_argument(
        "--clients",
        action="store_true",
        help="also send the test clients' requests through the stack (middleware_stack.test)",
    )
    parser.add_argument(
        "--stack-setting",
        type=parse_setting,
        action="append",
        default=[],
        metavar="ASGI_NAME=VALUE",
        help="build the stacks get_asgi_application returns with this ASGI_* setting "
        "(e.g. ASGI_THREAD_REUSE=False); repeatable",
    )
    parser.add_argument("--header-case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rerun", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds before a hung run dumps every thread's stack and exits (default 900)",
    )
    parser.add_argument(
        "--cache", type=Path, help=f"where the sdist's tests are kept (default {cache_root()})"
    )
    args = parser.parse_args(argv)
    labels = args.labels or list(default_labels(args.clients))

    try:
        import middleware_stack  # noqa: F401
    except ImportError:  # not installed: this checkout's
        sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    version = django_version()
    try:
        tests = django_tests(version, args.cache or cache_root())
    except NoSdist as exc:
        print(f"django_suite: cannot get Django {version}'s tests: {exc}", file=sys.stderr)
        return EXIT_NO_SDIST
    print(f"django_suite: Django {version}'s tests from {tests}", flush=True)
    faulthandler.dump_traceback_later(args.timeout, exit=True)  # a hang fails, loudly
    if args.checks == "warn" and args.verbosity < 2:  # counted in the summary instead
        from middleware_stack import StackWarning

        warnings.filterwarnings("ignore", category=StackWarning)
        logging.getLogger("middleware_stack.checks").setLevel(logging.ERROR)
    patch_django(args.checks, args.clients, args.header_case, dict(args.stack_setting))
    started = time.monotonic()
    run_runtests(tests, labels, args.verbosity)
    return verdict(version, args, labels, time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
