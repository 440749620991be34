"""docs/quickstart.rst, followed literally in a fresh virtualenv, gives the output it shows.

One test: a new venv (pip's cache reused), the install line with this checkout in place
of the PyPI name, ``django-admin startproject``, the page's settings and ``asgi.py``,
then ``migrate``, ``check``, ``asgi_stack`` (compared line by line with the page) and the
misspelt option under uvicorn (the error line compared with the page).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.quickstart

PAGE = ROOT / "docs" / "quickstart.rst"


def blocks(text: str) -> list[str]:
    """Every literal block of an rst page (``.. code-block::`` and ``::``), dedented."""
    lines = text.splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(".. code-block::") or line.rstrip().endswith("::"):
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith(":")):
                i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
                body.append(lines[i][3:])
                i += 1
            found.append("\n".join(body).strip("\n"))
        else:
            i += 1
    return found


def one(items: list[str], start: str) -> str:
    matches = [b for b in items if b.startswith(start)]
    assert len(matches) == 1, f"expected one block starting {start!r} in {PAGE.name}"
    return matches[0]


def run(cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert result.returncode == 0, f"{shlex.join(cmd)}:\n{result.stdout}\n{result.stderr}"
    return result


#: Wheels of the quickstart's requirements, kept between runs: the index is asked only
#: when they no longer satisfy the install line (a new release, a new requirement).
WHEELS = Path(
    os.environ.get("QUICKSTART_WHEELS", Path.home() / ".cache" / "middleware_stack-quickstart")
)


def install_from_wheelhouse(py: str, args: list[str], cwd: Path) -> None:
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
    offline = [*pip, "install", "--no-index", "--find-links", str(WHEELS), *args]
    if WHEELS.is_dir() and run(offline, cwd, ok=False).returncode == 0:
        return
    # Build tools too: building this checkout (build isolation) needs setuptools offline.
    run([*pip, "wheel", "-w", str(WHEELS), "setuptools>=68", "wheel", *args], cwd)
    run(offline, cwd)


def test_the_quickstart_page_run_literally_in_a_fresh_venv(tmp_path: Path) -> None:
    page = blocks(PAGE.read_text())
    install = one(page, "pip install ./django-middleware-stack")
    asgi_py = one(page, "import os\n\nfrom django.core.asgi import get_asgi_application")
    middleware = one(page, "ASGI_MIDDLEWARE = [")
    console = one(page, "$ python manage.py asgi_stack").splitlines()
    error = one(page, "middleware_stack.exceptions.StackConfigurationError:")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    py = str(venv / "bin" / "python")
    args = shlex.split(install)[2:]  # after "pip install"
    args = [str(ROOT) if a == "./django-middleware-stack" else a for a in args]
    install_from_wheelhouse(py, args, tmp_path)

    run([str(venv / "bin" / "django-admin"), "startproject", "mysite", "."], tmp_path)
    settings = tmp_path / "mysite" / "settings.py"
    text = settings.read_text()
    text = text.replace("INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "middleware_stack",\n', 1)
    settings.write_text(text + "\n" + middleware + "\n")
    (tmp_path / "mysite" / "asgi.py").write_text(asgi_py + "\n")

    run([py, "manage.py", "migrate", "-v", "0"], tmp_path)
    check = run([py, "manage.py", "check"], tmp_path)
    assert "System check identified no issues" in check.stdout
    described = run([py, "manage.py", "asgi_stack"], tmp_path)
    assert described.stdout.rstrip("\n").splitlines() == console[1:]

    settings.write_text(settings.read_text().replace('"allow_origins"', '"allow_origin"', 1))
    served = run([py, "-m", "uvicorn", "mysite.asgi:application"], tmp_path, ok=False)
    assert served.returncode != 0
    last = served.stderr.rstrip("\n").splitlines()[-1]
    assert last == re.sub(r"\s*\n\s*", " ", error), served.stderr
