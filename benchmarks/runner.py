"""One benchmark run: in-process, then end-to-end, with the machine described."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import report

ROOT = Path(__file__).resolve().parent.parent

#: name -> (in-process, end-to-end) parameters
MODES: dict[str, dict[str, Any]] = {
    "full": {"n_django": 600, "n_raw": 30000, "repeats": 21, "concurrency": 1000,
             "e2e_seconds": 5, "e2e_rounds": 7},
    "quick": {"n_django": 120, "n_raw": 4000, "repeats": 5, "concurrency": 1000,
              "e2e_seconds": 2, "e2e_rounds": 2},
}  # fmt: skip


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_fields() -> list[int] | None:
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (and the hypervisor has stolen:
    those are not ours either), from /proc/stat."""
    fields = _cpu_fields()
    if fields is None:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _steal_seconds() -> float | None:
    """CPU seconds the hypervisor gave other guests while this one was runnable."""
    fields = _cpu_fields()
    if fields is None or len(fields) < 8:
        return None
    return fields[7] / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def meta() -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "django": _version("django"),
        "asgiref": _version("asgiref"),
        "starlette": _version("starlette"),
        "django-cors-headers": _version("django-cors-headers"),
        "uvicorn": _version("uvicorn"),
        "gunicorn": _version("gunicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "middleware_stack": _version("django-middleware-stack"),
        "git_commit": _git_commit(),
    }


def run(
    *,
    mode: str = "quick",
    e2e: bool = True,
    overrides: dict[str, Any] | None = None,
    command: str = "",
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the benchmarks; the result (JSON-ready) with its targets computed."""
    from benchmarks.inprocess import run_inprocess

    params = {**MODES[mode], **(overrides or {})}
    result: dict[str, Any] = {"mode": mode, "command": command, "meta": meta()}
    load: dict[str, Any] = {"loadavg_before": _loadavg()}
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.monotonic()
    steal0 = _steal_seconds()
    result["inprocess"] = run_inprocess(
        n_django=params["n_django"],
        n_raw=params["n_raw"],
        repeats=params["repeats"],
        concurrency=params["concurrency"],
        progress=progress,
    )
    if e2e:
        from benchmarks.e2e import run_e2e

        result["e2e"] = run_e2e(
            seconds=params["e2e_seconds"],
            rounds=params["e2e_rounds"],
            wsgi=mode == "full",  # gunicorn sync and gthread against uvicorn + the stack
            progress=progress,
        )
    busy1, own1, elapsed = _busy_seconds(), _own_seconds(), time.monotonic() - t0
    load["loadavg_after"] = _loadavg()
    load["elapsed_s"] = round(elapsed, 1)
    if busy0 is not None and busy1 is not None and elapsed > 0:
        load["other_busy_cpus"] = round(max(0.0, (busy1 - busy0) - (own1 - own0)) / elapsed, 2)
    steal1 = _steal_seconds()
    if steal0 is not None and steal1 is not None and elapsed > 0:
        load["stolen_cpus"] = round((steal1 - steal0) / elapsed, 2)  # part of other_busy_cpus
    result["meta"]["load"] = load
    result["targets"] = report.targets(result)
    return result


def write(result: dict[str, Any], out: Path, images: Path | None = None) -> list[Path]:
    """latest.json, latest.md and latest.rst in ``out``; PNGs in ``images`` (or ``out``)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    images = images or out
    images.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "latest.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=False, default=str) + "\n")
    written.append(path)
    (out / "latest.md").write_text(report.render(result, "md"))
    (out / "latest.rst").write_text(report.render(result, "rst"))
    written += [out / "latest.md", out / "latest.rst"]
    written += report.plots(result, images)
    return written


def python_cmd() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return "python"
