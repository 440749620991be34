"""The installed Django's ``tests/``, from its sdist: downloaded once, checked, cached.

Part of ``scripts/django_suite.py``, which says what the tests are for.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["NoSdist", "cache_root", "django_tests", "django_version"]


class NoSdist(Exception):
    """The sdist is not cached and could not be downloaded."""


def django_version() -> str:
    import django

    return django.__version__


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "middleware_stack-django-src"


def django_tests(version: str, root: Path) -> Path:
    """``tests/`` of Django ``version``'s sdist, downloaded and extracted once into ``root``."""
    target = root / version
    tests = target / "tests"
    if (tests / "runtests.py").is_file():
        return tests
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs download it once
        if (tests / "runtests.py").is_file():
            return tests
        with tempfile.TemporaryDirectory(dir=root) as work:
            staging = Path(work) / "extracted"
            _extract_tests(_download(version, Path(work)), version, staging)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)  # complete or absent, never half there
    return tests


def _download(version: str, into: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    pip += ["--retries", "2", "--timeout", "30"]  # offline: say so in a minute, not five
    options = ["--no-deps", "--no-binary", ":all:", "--dest", str(into), f"django=={version}"]
    print(f"django_suite: downloading Django {version}'s sdist (pip download)", flush=True)
    done = subprocess.run([*pip, *options], capture_output=True, text=True)
    found = sorted(into.glob("[Dd]jango-*.tar.gz"))
    if done.returncode != 0 or not found:
        output = (done.stderr or done.stdout).strip()[-2000:]
        raise NoSdist(f"pip download django=={version} --no-binary :all: failed:\n{output}")
    return found[0]


def _extract_tests(sdist: Path, version: str, into: Path) -> None:
    """Extract ``tests/`` only, once the sdist's metadata says it is ``version``."""
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        info = tar.extractfile(f"{top}/PKG-INFO")
        meta = info.read().decode("utf-8", "replace") if info is not None else ""
        found = re.search(r"^Version:\s*(\S+)", meta, re.MULTILINE)
        if found is None or found.group(1) != version:
            raise SystemExit(
                f"django_suite: {sdist.name} is Django {found and found.group(1)}, but "
                f"Django {version} is installed; one version's tests prove nothing of another."
            )
        members = []
        for member in tar.getmembers():
            name = member.name
            if name.startswith(f"{top}/tests/") and (member.isfile() or member.isdir()):
                if name.startswith("/") or ".." in Path(name).parts:
                    raise SystemExit(f"django_suite: unsafe path in {sdist.name}: {name}")
                member.name = name[len(top) + 1 :]
                members.append(member)
        into.mkdir(parents=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, members=members, filter="data")
        else:  # a Python without extraction filters: files and dirs only, names checked
            tar.extractall(into, members=members)
