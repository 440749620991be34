"""Django's own ``asgi``, ``handlers`` and ``middleware`` tests, run through the stack.

``scripts/django_suite.py`` takes them from the installed Django's sdist (cached between
runs) and runs them with ``get_asgi_application`` returning ``build_stack(...)``; it
passes when the tests that fail are exactly the documented differences
(docs/django-suite.rst). Two runs: as a project's asgi.py has it, and with the test
clients through the stack too under runtime protocol checks. The script's verdict
(what makes a run fail) and its handling of the sdist are tested here directly.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import unittest
from argparse import Namespace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.servers import ROOT

SCRIPT = ROOT / "scripts" / "django_suite.py"


def load_script() -> ModuleType:
    if str(SCRIPT.parent) not in sys.path:  # its helper modules, as when run as a script
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("django_suite", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


suite = load_script()
patching = importlib.import_module("django_suite_patch")
fetching = importlib.import_module("django_suite_sdist")


# -- the whole thing, as CI runs it ------------------------------------------------------


@pytest.mark.django_suite
@pytest.mark.parametrize(
    "args",
    [[], ["--clients", "--checks", "warn"]],
    ids=["get_asgi_application", "test-clients-and-runtime-checks"],
)
def test_djangos_own_tests_pass_through_the_stack_but_for_the_documented_differences(
    args: list[str],
) -> None:
    # runtests.py takes DJANGO_SETTINGS_MODULE as its settings: Django's, not ours.
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--timeout", "400"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = f"{done.stdout}\n{done.stderr}"
    if done.returncode == suite.EXIT_NO_SDIST:
        message = f"Django's sdist could not be downloaded: {done.stderr.strip()[-800:]}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PyPI must be reachable)")
        pytest.skip(message)
    assert done.returncode == 0, output[-12000:]
    assert "django_suite: OK" in done.stdout
    assert " stacks built" in done.stdout and " 0 stacks built" not in done.stdout


# -- the verdict -------------------------------------------------------------------------


class Sample(unittest.TestCase):
    """Stand-ins for Django's tests: one passes, two fail in different ways."""

    __test__ = False  # run by judge(), not collected by pytest

    def test_passes(self) -> None:
        pass

    def test_header_case(self) -> None:
        self.assertEqual(b"content-type", b"Content-Type")

    def test_broken(self) -> None:
        raise KeyError("something else entirely")

    def test_slow(self) -> None:
        raise TimeoutError  # what ApplicationCommunicator.receive_output raises after 1 s


def sample_id(name: str) -> str:
    return f"{__name__}.Sample.{name}"


def judge(
    monkeypatch: pytest.MonkeyPatch,
    expected: dict[str, Any],
    names: tuple[str, ...] = ("test_passes", "test_header_case", "test_broken"),
) -> tuple[int, str]:
    """Run Sample as the suite would, then the script's verdict with ``expected``."""
    run = patching.Run()
    monkeypatch.setattr(suite, "RUN", run)
    monkeypatch.setattr(suite, "EXPECTED", expected)
    result = unittest.TestResult()
    for name in names:
        run.ran.append(sample_id(name))
        Sample(name).run(result)
    run.results.append(result)
    args = Namespace(header_case=False, clients=False, checks=None, verbosity=1, rerun=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    code = suite.verdict("5.2.1", args, ["sample"], 0.0)
    monkeypatch.undo()
    return code, out.getvalue()


def listed(match: str, **kwargs: Any) -> Any:
    return suite.Expected("why", match, **kwargs)


def test_failures_exactly_as_listed_pass_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = judge(
        monkeypatch,
        {
            sample_id("test_header_case"): listed("Content-Type"),
            sample_id("test_broken"): listed("something else"),
        },
    )
    assert code == 0, out
    assert "expected failure: tests.test_django_suite.Sample.test_broken" in out


def test_an_unlisted_failure_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = judge(monkeypatch, {sample_id("test_header_case"): listed("Content-Type")})
    assert code == 1
    assert f"unexpected failure: {sample_id('test_broken')}" in out


def test_a_listed_test_that_passes_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = judge(
        monkeypatch,
        {
            sample_id("test_header_case"): listed("Content-Type"),
            sample_id("test_broken"): listed("something else"),
            sample_id("test_passes"): listed("anything"),
        },
    )
    assert code == 1
    assert f"listed as failing, but passed (update EXPECTED): {sample_id('test_passes')}" in out


def test_a_listed_test_failing_another_way_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out = judge(
        monkeypatch,
        {
            sample_id("test_header_case"): listed("Content-Type"),
            sample_id("test_broken"): listed("Content-Length"),  # it raises KeyError instead
        },
    )
    assert code == 1
    assert f"fails, but not as listed (/Content-Length/): {sample_id('test_broken')}" in out


@pytest.mark.parametrize("passes_alone", [True, False])
def test_a_test_that_only_timed_out_is_run_again_alone_and_must_pass_then(
    monkeypatch: pytest.MonkeyPatch, passes_alone: bool
) -> None:
    again: list[list[str]] = []

    def rerun_alone(test_ids: list[str], args: Any) -> bool:
        again.append(test_ids)
        return passes_alone

    monkeypatch.setattr(suite, "rerun_alone", rerun_alone)
    code, out = judge(monkeypatch, {}, names=("test_passes", "test_slow", "test_broken"))
    assert again == [[sample_id("test_slow")]]  # not the KeyError one
    assert code == 1  # test_broken is still unlisted
    assert f"unexpected failure: {sample_id('test_broken')}" in out
    slow_failed = f"unexpected failure: {sample_id('test_slow')}" in out
    assert slow_failed is not passes_alone, out


def test_entries_apply_only_to_their_django_series_and_mode() -> None:
    entries = {
        "a": suite.Expected("why", "x", ("6.1",)),
        "b": suite.Expected("why", "x", clients=True),
        "c": suite.Expected("why", "x"),
    }
    saved = suite.EXPECTED
    suite.EXPECTED = entries
    try:
        assert set(suite.applicable("5.2.19", clients=False)) == {"c"}
        assert set(suite.applicable("6.1.3", clients=False)) == {"a", "c"}
        assert set(suite.applicable("6.1.3", clients=True)) == {"a", "b", "c"}
    finally:
        suite.EXPECTED = saved


def test_every_listed_difference_is_in_the_docs() -> None:
    page = (ROOT / "docs" / "django-suite.rst").read_text()
    for test_id in suite.EXPECTED:
        assert test_id in page, f"{test_id} is listed in scripts/django_suite.py, not the docs"


# -- the sdist ---------------------------------------------------------------------------


def make_sdist(path: Path, version: str, claimed: str) -> Path:
    """A Django-shaped sdist of ``version`` whose PKG-INFO says ``claimed``."""
    sdist = path / f"django-{version}.tar.gz"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: Django\nVersion: {claimed}\n",
        "django/__init__.py": "VERSION = (9, 9, 0)\n",
        "tests/runtests.py": "print('runtests')\n",
        "tests/asgi/tests.py": "",
    }
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"django-{version}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist


def test_only_the_tests_directory_of_the_sdist_is_extracted(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "9.9", claimed="9.9")
    fetching._extract_tests(sdist, "9.9", tmp_path / "out")
    found = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert found == ["tests", "tests/asgi", "tests/asgi/tests.py", "tests/runtests.py"]


def test_an_sdist_of_another_version_is_refused(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "9.9", claimed="9.8")
    with pytest.raises(SystemExit, match=r"is Django 9\.8, but Django 9\.9 is installed"):
        fetching._extract_tests(sdist, "9.9", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cached_tests_are_used_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "9.9" / "tests").mkdir(parents=True)
    (tmp_path / "9.9" / "tests" / "runtests.py").write_text("")

    def no_download(*args: Any) -> None:
        raise AssertionError("downloaded although the tests were cached")

    monkeypatch.setattr(fetching, "_download", no_download)
    assert fetching.django_tests("9.9", tmp_path) == tmp_path / "9.9" / "tests"


def test_without_the_sdist_the_script_exits_3_with_pips_reason(tmp_path: Path) -> None:
    # The exit status the suite test turns into a skip (a failure under CI=true).
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env["PIP_NO_INDEX"] = "1"  # as offline: pip finds no distribution, at once
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cache", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == suite.EXIT_NO_SDIST, done.stdout + done.stderr
    assert "cannot get Django" in done.stderr and "No matching distribution" in done.stderr
    assert not (tmp_path / fetching.django_version()).exists()  # nothing half-extracted


def test_stack_settings_are_asgi_names_with_python_literals() -> None:
    assert suite.parse_setting("ASGI_THREAD_REUSE=False") == ("ASGI_THREAD_REUSE", False)
    assert suite.parse_setting("ASGI_THREAD_POOL_MAX=2") == ("ASGI_THREAD_POOL_MAX", 2)
    for bad in ("MIDDLEWARE=[]", "ASGI_THREAD_REUSE", "ASGI_THREAD_REUSE=nope"):
        with pytest.raises(argparse.ArgumentTypeError):
            suite.parse_setting(bad)


def test_a_stack_that_never_settles_is_waited_for_once_not_before_every_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Stuck:  # a request whose test's event loop closed under it: never back
        boundary = Namespace(inflight=1, pool=None)

    class Settles:
        boundary = Namespace(inflight=0, pool=None)

    run = patching.Run()
    run.stacks = [Stuck(), Settles()]
    monkeypatch.setattr(patching, "RUN", run)
    monkeypatch.setattr(patching, "SETTLE_TIMEOUT", 0.05)
    for test in ("first", "second", "third"):
        run.current = test
        patching.settle()
    assert run.settled[0][0] == "first" and run.settled[0][2] is True  # waited, left behind
    assert len(run.settled) == 1  # the later tests did not wait for it again
