"""The distributions as a user gets them: their metadata, the sdist's contents, and the
built wheel serving a ``django-admin startproject`` site under real uvicorn.

``.ci/run`` builds the wheel and sdist once (``python -m build``), runs ``twine check`` on
them and passes their directory in ``MIDDLEWARE_STACK_DIST``; without it, these tests
build them (the ``package`` extra installs ``build``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import django
import httpx
import pytest

from tests.conftest import IN_CI
from tests.servers import ROOT, serve

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
DJANGOS = ("5.2", "6.0", "6.1")


def _need_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        message = f"{name} is not installed: install the 'package' extra"
        if IN_CI:
            pytest.fail(message + " (CI=true: the leg must install it)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("MIDDLEWARE_STACK_DIST")
    if given:
        return Path(given)
    _need_module("build")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    return _one(dist, "django_middleware_stack-*.whl")


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(zf.read(name).decode())


def test_metadata_states_the_license_as_spdx_and_ships_the_license_file(
    wheel: Path, metadata: Message
) -> None:
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License"] is None  # the deprecated free-text field is gone
    with zipfile.ZipFile(wheel) as zf:
        (licence,) = [n for n in zf.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        text = zf.read(licence).decode()
    assert "BSD 3-Clause License" in text
    assert "the django-middleware-stack authors" in text


def test_metadata_declares_the_supported_pythons_and_djangos(metadata: Message) -> None:
    classifiers = metadata.get_all("Classifier") or []
    assert metadata["Requires-Python"] == ">=3.10"
    requires = metadata.get_all("Requires-Dist") or []
    assert "django>=5.2" in requires
    assert "asgiref>=3.8" in requires
    pythons = {
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert pythons == set(PYTHONS)
    djangos = {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Framework :: Django :: ")}
    assert djangos == set(DJANGOS)
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert metadata["Author"] and metadata["Keywords"]
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Issues", "Documentation"} <= set(urls)


def test_every_classifier_is_a_known_trove_classifier(metadata: Message) -> None:
    _need_module("trove_classifiers")
    from trove_classifiers import classifiers as known

    unknown = [c for c in metadata.get_all("Classifier") or [] if c not in known]
    assert not unknown, f"PyPI refuses an upload with unknown classifiers: {unknown}"


def test_sdist_holds_the_whole_tree_so_its_tests_can_run(dist: Path) -> None:
    """The sdist ships every file of the tree (tests with their conftest, settings and
    sites, the example they serve, docs, benchmarks, scripts) and nothing else but its
    generated metadata."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing to compare the sdist with")
    tree = {p for p in listed.stdout.splitlines() if (ROOT / p).is_file()}
    with tarfile.open(_one(dist, "django_middleware_stack-*.tar.gz")) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile()}
    generated = {"PKG-INFO", "setup.cfg"}
    extra = {m for m in members - tree if m not in generated and ".egg-info/" not in m}
    assert not extra, f"in the sdist but not in the tree: {sorted(extra)}"
    assert not tree - members, f"in the tree but not in the sdist: {sorted(tree - members)}"
    for needed in ("LICENSE", "tests/conftest.py", "tests/settings.py", "scripts/test",
                   "docs/conf.py", "example/manage.py"):  # fmt: skip
        assert needed in members


@pytest.mark.server
def test_built_wheel_serves_a_startproject_site_under_uvicorn(wheel: Path, tmp_path: Path) -> None:
    """A fresh virtualenv with only Django, uvicorn and the wheel; ``startproject``;
    ``build_stack`` in its asgi.py; one request through real uvicorn on loopback."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # The running Django's release, so each CI leg checks the wheel against its own Django.
    subprocess.run(
        [*pip, str(wheel), f"django=={django.__version__}", "uvicorn"],
        check=True,
        env=env,
        timeout=600,
    )
    where = subprocess.run(
        [py, "-c", "import middleware_stack; print(middleware_stack.__file__)"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert str(venv) in where, f"imported from the checkout, not the wheel: {where}"
    installed = subprocess.run(
        [py, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.lower()  # fmt: skip
    assert "starlette" not in installed and "pytest" not in installed  # nothing else leaked in

    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(
        [str(venv / "bin" / "django-admin"), "startproject", "mysite", str(site)],
        check=True, env=env, timeout=60,
    )  # fmt: skip
    asgi = site / "mysite" / "asgi.py"
    source = asgi.read_text()
    assert "application = get_asgi_application()" in source
    asgi.write_text(
        source.replace(
            "application = get_asgi_application()",
            "from middleware_stack import build_stack\n\n"
            "application = build_stack(get_asgi_application())",
        )
    )
    settings = site / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nINSTALLED_APPS += ["middleware_stack"]\n'
        + 'ASGI_MIDDLEWARE = ["middleware_stack.contrib.timing.TimingMiddleware"]\n'
    )
    checked = subprocess.run(
        [py, "manage.py", "check"], cwd=site, env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    with serve(
        "uvicorn", "mysite.asgi:application", cwd=site, python=py,
        env={"PYTHONPATH": "", "DJANGO_SETTINGS_MODULE": "mysite.settings"},
    ) as server:  # fmt: skip
        response = httpx.get(server.url + "/", timeout=30)
        log = server.log()
    # startproject's DEBUG site answers "/" with Django's welcome page.
    assert response.status_code == 200, log
    assert "The install worked successfully!" in response.text
    assert "server-timing" in response.headers  # the stack's timing layer ran
    assert "Application startup complete." in log  # lifespan answered by the boundary
    assert "Traceback" not in log
