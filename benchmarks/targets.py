"""The issues' targets: which ratio of which cases, its goal, and its verdict in one run.

Every ratio is computed from one run. It is refused (never printed) when any request of
the run failed, and marked unavailable when a configuration it needs is. Spread is the
range of the same ratio computed per repeat: the cases of one repeat ran back to back.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

#: End-to-end endpoints of the WSGI comparison (full mode only; see benchmarks.e2e).
UVICORN_MW = "uvicorn -w2 S0 startproject sync"
#: The same with ``ASGI_THREAD_POOL_MAX = 1``: one sync request at a time per worker.
UVICORN_MW_T1 = "uvicorn -w2 S0 startproject sync, 1 thread"
#: Issue 21's one-hop sketch under the same uvicorn: a bound, not a product (benchmarks.sketch).
UVICORN_SKETCH = "uvicorn -w2 sketch startproject sync"
GUNICORN_SYNC = "gunicorn sync -w2 startproject sync"
GUNICORN_GTHREAD = "gunicorn gthread -w2 -t4 startproject sync"

#: (id, what, kind, case names, comparison, goal, unit)
TARGETS: tuple[tuple[str, str, str, tuple[str, ...], str | None, float | None, str], ...] = (
    ("cors_get", "CORS simple GET: added time, contrib / Starlette", "added_ratio",
     ("cors GET", "cors-starlette GET", "B"), "<=", 0.5, "x"),
    ("cors_preflight", "CORS preflight: added time, contrib / Starlette", "added_ratio",
     ("cors preflight", "cors-starlette preflight", "B"), "<=", 0.7, "x"),
    ("timing_added", "Timing (one on_record): added time over B", "added",
     ("timing", "B"), None, None, "µs"),
    ("timing_over_floor", "Timing: added time, contrib / timing-floor (the lower bound)",
     "added_ratio", ("timing", "timing-floor", "B"), "<=", 1.6, "x"),
    ("timing_ratio", "Timing: added time, contrib / hand-written", "added_ratio",
     ("timing", "timing-hand", "B"), None, None, "x"),
    ("timing_floor_added", "Timing lower bound (header + contextvar + one callback): added over B",
     "added", ("timing-floor", "B"), None, None, "µs"),
    ("auth_trusted_added", "Auth, trusted header: added time over B", "added",
     ("auth trusted", "B"), "<=", 1.5, "µs"),
    ("auth_trusted_ratio", "Auth, trusted header: contrib / hand-written", "added_ratio",
     ("auth trusted", "auth-hand trusted", "B"), None, None, "x"),
    ("auth_anon_added", "Auth, anonymous: added time over B", "added",
     ("auth anonymous", "B"), "<=", 0.7, "µs"),
    ("auth_anon_ratio", "Auth, anonymous: contrib / hand-written", "added_ratio",
     ("auth anonymous", "auth-hand anonymous", "B"), None, None, "x"),
    ("S_over_H_on_B", "Around B: build_stack(3 layers) / hand-built H, added time", "added_ratio",
     ("S/B", "H/B", "B"), "<", 1.0, "x"),
    ("S_layers_over_H_on_B", "Around B: the 3 contrib layers (no boundary) / H, added time",
     "added_ratio", ("S/B-layers", "H/B", "B"), "<", 1.0, "x"),
    ("S_over_A", "Django: S (stack + 3 layers) / bare Django A, async view", "ratio",
     ("S", "A"), "<", 0.65, "x"),
    ("reuse_async", "Thread reuse: build_stack(django, []) / bare Django, async view", "ratio",
     ("S0", "A"), "<=", 0.6, "x"),
    ("reuse_sync", "Thread reuse: build_stack(django, []) / bare Django, sync view", "ratio",
     ("S0 sync", "A sync"), "<=", 0.65, "x"),
    ("reuse_startproject", "Thread reuse with startproject's MIDDLEWARE (async view)", "ratio",
     ("S0 startproject", "A startproject"), None, None, "x"),
    ("threads_S0", "Threads started per request, build_stack(django, []), async", "threads",
     ("S0",), "==", 0.0, ""),
    ("threads_S0_sync", "Threads started per request, build_stack(django, []), sync", "threads",
     ("S0 sync",), "==", 0.0, ""),
    ("threads_A", "Threads started per request, bare Django, async", "threads",
     ("A",), None, None, ""),
    ("threads_A_sync", "Threads started per request, bare Django, sync", "threads",
     ("A sync",), None, None, ""),
    ("wsgi_stack_over_floor", "Django, startproject's MIDDLEWARE, sync view: S0 / the floor "
     "(WSGIHandler through one hand-off)", "ratio",
     ("S0 startproject sync", "W-floor startproject sync"), "<=", 1.3, "x"),
    ("wsgi_stack_over_wsgi", "the same: S0 / plain WSGIHandler (raw ratio)", "ratio",
     ("S0 startproject sync", "W startproject sync"), None, None, "x"),
    ("wsgi_floor_over_wsgi", "the same: the floor / plain WSGIHandler (one hand-off's cost)",
     "ratio", ("W-floor startproject sync", "W startproject sync"), None, None, "x"),
    ("wsgi_stack_over_floor_async", "startproject's MIDDLEWARE, async view: S0 / the floor",
     "ratio", ("S0 startproject", "W-floor startproject"), None, None, "x"),
    ("wsgi_stack_over_floor_empty", "MIDDLEWARE = [], sync view: S0 / the floor", "ratio",
     ("S0 sync", "W-floor sync"), None, None, "x"),
    ("wsgi_stack_over_wsgi_empty", "MIDDLEWARE = [], sync view: S0 / plain WSGIHandler",
     "ratio", ("S0 sync", "W sync"), None, None, "x"),
    ("handovers_S0_mw_sync", "Thread hand-overs per request, S0, startproject's, sync view",
     "handovers", ("S0 startproject sync",), "<=", 1.0, ""),
    ("threads_S0_mw_sync", "Threads started per request, S0, startproject's, sync view",
     "threads", ("S0 startproject sync",), None, None, ""),
    ("handovers_S0_mw", "Thread hand-overs per request, S0, startproject's, async view",
     "handovers", ("S0 startproject",), None, None, ""),
    ("handovers_S0_sync", "Thread hand-overs per request, S0, MIDDLEWARE = [], sync view",
     "handovers", ("S0 sync",), None, None, ""),
    ("handovers_floor", "Thread hand-overs per request, the floor, sync view", "handovers",
     ("W-floor startproject sync",), "==", 1.0, ""),
    ("preflight_D_over_S", "Preflight: through D (django-cors-headers) / through S", "ratio",
     ("D preflight", "S preflight"), ">=", 50.0, "x"),
    ("checks_warn_over_floor", "checks='warn' / S/B-warn-floor (the lower bound), 3 layers",
     "ratio", ("S/B-warn", "S/B-warn-floor"), "<=", 1.3, "x"),
    ("checks_warn_over_off", "checks='warn' / 'off', 3 layers around B", "ratio",
     ("S/B-warn", "S/B"), None, None, "x"),
    ("checks_warn_pct_of_django", "checks='warn': added time as % of a whole Django request (S)",
     "added_pct", ("S/B-warn", "S/B", "S"), None, None, "%"),
    ("checks_strict_over_off", "checks='strict' / 'off', 3 layers around B", "ratio",
     ("S/B-strict", "S/B"), None, None, "x"),
    ("checks_noblock_over_off", "checks='warn', blocking attribution off / 'off'", "ratio",
     ("S/B-warn-noblock", "S/B"), None, None, "x"),
    ("checks_floor_over_off", "lower bound (leanest checker, same checks) / 'off'", "ratio",
     ("S/B-warn-floor", "S/B"), None, None, "x"),
    ("checks_off_over_manual", "checks='off' / same layers composed by hand", "ratio",
     ("S/B", "S/B-manual"), "~", 1.0, "x"),
    ("memory_S_over_A", "Memory per in-flight request, S / A", "memory",
     ("S", "A"), None, None, "x"),
    ("e2e_S0_over_A", "uvicorn + wrk req/s, build_stack(django, []) / bare Django", "e2e",
     ("S0", "A"), ">=", 1.5, "x"),
    ("e2e_cpu_S0_over_A", "uvicorn server CPU per request, build_stack(django, []) / bare Django",
     "e2e_cpu", ("S0", "A"), None, None, "x"),
    ("e2e_S_over_A", "uvicorn + wrk req/s, S / bare Django", "e2e",
     ("S", "A"), None, None, "x"),
    ("e2e_stack_over_gunicorn_sync", "startproject's MIDDLEWARE, 2 workers: uvicorn + S0 / "
     "gunicorn sync, req/s", "e2e", (UVICORN_MW, GUNICORN_SYNC), ">=", 1.2, "x"),
    ("e2e_stack_over_gunicorn_sync_spread", "the same, rounds in which each server spread "
     "wrk's load over its 2 workers (busiest worker under 75% of its CPU), req/s",
     "e2e_spread", (UVICORN_MW, GUNICORN_SYNC), None, None, "x"),
    ("e2e_stack_over_gthread", "startproject's MIDDLEWARE, 2 workers: uvicorn + S0 / "
     "gunicorn gthread (4 threads), req/s", "e2e", (UVICORN_MW, GUNICORN_GTHREAD), ">=", 1.0, "x"),
    ("e2e_stack_over_gthread_spread", "the same, rounds in which each server spread wrk's "
     "load over its 2 workers, req/s", "e2e_spread", (UVICORN_MW, GUNICORN_GTHREAD), None, None,
     "x"),
    ("e2e_stack_t1_over_gunicorn_sync", "the same with ASGI_THREAD_POOL_MAX = 1 / gunicorn "
     "sync, req/s", "e2e", (UVICORN_MW_T1, GUNICORN_SYNC), None, None, "x"),
    ("e2e_p99_stack_t1_over_gunicorn_sync", "p99, uvicorn + S0 with ASGI_THREAD_POOL_MAX = 1 / "
     "gunicorn sync", "e2e_p99", (UVICORN_MW_T1, GUNICORN_SYNC), None, None, "x"),
    ("e2e_sketch_over_gunicorn_sync", "the bound: issue 21's one-hop sketch under the same "
     "uvicorn / gunicorn sync, req/s", "e2e", (UVICORN_SKETCH, GUNICORN_SYNC), None, None, "x"),
    ("e2e_stack_over_sketch", "uvicorn + S0 / the sketch (what the kept semantics cost), req/s",
     "e2e", (UVICORN_MW, UVICORN_SKETCH), None, None, "x"),
    ("e2e_cpu_stack_over_sketch", "server CPU per request, uvicorn + S0 / the sketch",
     "e2e_cpu", (UVICORN_MW, UVICORN_SKETCH), None, None, "x"),
    ("e2e_p99_stack_over_gunicorn_sync", "p99, uvicorn + S0 / gunicorn sync (aim: within 1.5x)",
     "e2e_p99", (UVICORN_MW, GUNICORN_SYNC), None, None, "x"),
    ("e2e_p99_stack_over_gthread", "p99, uvicorn + S0 / gunicorn gthread", "e2e_p99",
     (UVICORN_MW, GUNICORN_GTHREAD), None, None, "x"),
    ("e2e_preflight_S_over_D", "uvicorn + wrk preflight req/s, S / D", "e2e",
     ("S preflight", "D preflight"), None, None, "x"),
)  # fmt: skip

#: A two-worker server whose busiest worker used this share of its CPU in a round had
#: its load on one worker (uvicorn's workers share one listening socket, and one may
#: accept all of wrk's keep-alive connections): half the cores idle, whatever the app.
SKEWED = 0.75

#: Range separator in tables (an en dash).
TO = "\u2013"

#: Within noise: the per-repeat range includes 1.0, or the median is this close to it.
NOISE = 0.05


def failed(result: dict[str, Any]) -> list[str]:
    """Every failure of the run, as ``where: what`` lines."""
    out = []
    for part in ("inprocess", "e2e"):
        for where, problems in (result.get(part) or {}).get("failures", {}).items():
            out += [f"{part} {where}: {p}" for p in problems]
    return out


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def _paired(cases: dict[str, Any], names: Sequence[str]) -> list[list[float]] | None:
    series = [cases[n]["samples_us"] for n in names]
    if any(not s for s in series) or len({len(s) for s in series}) != 1:
        return None
    return [list(col) for col in zip(*series, strict=True)]


def interleaved_groups() -> list[tuple[str, ...]]:
    """The case groups of the added-time targets, timed again in interleaved rounds (a
    group whose cases another group holds is timed in that one)."""
    groups = {tuple(names) for _, _, kind, names, *_ in TARGETS if kind in _ADDED}
    return sorted(g for g in groups if not any(set(g) < set(h) for h in groups))


_ADDED = ("added", "added_ratio")


def _interleaved(
    kind: str, names: Sequence[str], inproc: dict[str, Any]
) -> tuple[float, tuple[float, float], str] | None:
    """An added-time target from the interleaved rounds: the median of the per-round
    values, (min, max) of them; None when the run has no such rounds (older results)."""
    found = inproc.get("interleaved") or {}
    group = found.get(",".join(names)) or next(
        (g for g in found.values() if all(g.get(n) for n in names)), None
    )
    if not group or any(not group.get(n) for n in names):
        return None
    rounds = list(zip(*(group[n] for n in names), strict=True))
    if kind == "added":
        per = [x - b for x, b in rounds]
    else:
        per = [(x - b) / (y - b) for x, y, b in rounds if y != b]
    if not per:
        return None
    return _med(per), (min(per), max(per)), ""


def _value(kind: str, names: Sequence[str], result: dict[str, Any]) -> tuple[Any, Any, str]:
    """(value, (lo, hi) or None, why unavailable or '')."""
    inproc = result.get("inprocess") or {}
    cases = inproc.get("cases", {})
    if kind in _ADDED:
        found = _interleaved(kind, names, inproc)
        if found is not None:
            return found
    if kind in ("e2e", "e2e_spread", "e2e_cpu", "e2e_p99"):
        key = {"e2e_cpu": "cpu_us_per_request", "e2e_p99": "p99_ms"}.get(kind, "rps")
        e2e = result.get("e2e") or {}
        eps = e2e.get("endpoints", {})
        if "unavailable" in e2e or not eps:
            return None, None, e2e.get("unavailable", "end-to-end not run (--no-e2e)")
        for n in names:
            if n not in eps or not eps[n].get("runs"):
                return None, None, eps.get(n, {}).get("unavailable", f"{n} not run")
        skewed: set[int] = set()
        if kind == "e2e_spread":  # rounds where a server's load went to one worker: out
            skewed = {
                r["round"]
                for n in names
                for r in eps[n]["runs"]
                if r.get("busiest_worker_cpu_share", 0.0) >= SKEWED
            }
        by_round = [
            {r["round"]: r[key] for r in eps[n]["runs"] if key in r and r["round"] not in skewed}
            for n in names
        ]
        ratios = [by_round[0][r] / by_round[1][r] for r in by_round[0] if r in by_round[1]]
        if not ratios:
            return None, None, "no round in which both servers spread their load"
        return _med(ratios), (min(ratios), max(ratios)), ""
    if kind == "memory":
        mem = inproc.get("memory", {})
        if any(n not in mem for n in names):
            return None, None, "memory benchmark not run"
        a, b = (mem[n]["bytes_per_request"] for n in names)
        return a / b, None, ""
    for n in names:
        if n not in cases:
            return None, None, f"{n} not run"
        if "unavailable" in cases[n]:
            return None, None, f"{n}: {cases[n]['unavailable']}"
    if kind in ("threads", "handovers"):
        v = cases[names[0]].get(f"{kind}_per_request")
        return (v, None, "") if v is not None else (None, None, "not counted")
    pairs = _paired(cases, names)
    if pairs is None:
        return None, None, "no samples"
    if kind == "ratio":
        per = [x / y for x, y in pairs]
        med = [_med(cases[n]["samples_us"]) for n in names]
        value = med[0] / med[1]
    elif kind == "added":
        per = [x - b for x, b in pairs]
        value = _med(cases[names[0]]["samples_us"]) - _med(cases[names[1]]["samples_us"])
    elif kind == "added_pct":
        per = [(x - b) / d * 100 for x, b, d in pairs if d]
        x, b, d = (_med(cases[n]["samples_us"]) for n in names)
        value = (x - b) / d * 100
    else:  # added_ratio
        per = [(x - b) / (y - b) for x, y, b in pairs if y != b]
        x, y, b = (_med(cases[n]["samples_us"]) for n in names)
        value = (x - b) / (y - b) if y != b else float("inf")
    return value, (min(per), max(per)) if per else None, ""


def _verdict(value: float, spread: Any, op: str | None, goal: float | None) -> str:
    if op is None or goal is None:
        return "report"
    if op == "~":
        ok = abs(value - goal) <= NOISE or (spread is not None and spread[0] <= goal <= spread[1])
    else:
        ok = {
            "<=": value <= goal,
            "<": value < goal,
            ">=": value >= goal,
            "==": abs(value - goal) < 1e-9,
        }[op]
    return "pass" if ok else "MISS"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ratio and target of the issues, with its verdict; refused after a failure."""
    refused = bool(failed(result))
    out = []
    for tid, what, kind, names, op, goal, unit in TARGETS:
        row: dict[str, Any] = {"id": tid, "what": what, "unit": unit, "cases": list(names)}
        row["goal"] = f"{op} {goal:g}{unit}" if op and goal is not None else ""
        if refused:
            row["status"] = "refused"
            row["why"] = "the run had failed requests"
            out.append(row)
            continue
        value, spread, why = _value(kind, names, result)
        if value is None:
            row["status"] = "unavailable"
            row["why"] = why
        else:
            row["value"] = value
            row["spread"] = list(spread) if spread else None
            row["status"] = _verdict(value, spread, op, goal)
        out.append(row)
    return out


def _short(v: float, unit: str) -> str:
    return f"{v:.3g}{unit}"


def summary(rows: list[dict[str, Any]]) -> str:
    """One line: every target with a goal, measured against it, and how many missed.

    ``targets: 2 of 9 missed | timing_over_floor 1.41x (<= 1.6x) pass | ... `` ; a target
    that could not be computed shows its status (``unavailable``, ``refused``).
    """
    goals = [t for t in rows if t.get("goal")]
    missed = sum(1 for t in goals if t.get("status") == "MISS")
    parts = [f"targets: {missed} of {len(goals)} missed"]
    for t in goals:
        if "value" in t:
            verdict = "MISS" if t["status"] == "MISS" else "pass"
            parts.append(f"{t['id']} {_short(t['value'], t['unit'])} ({t['goal']}) {verdict}")
        else:
            parts.append(f"{t['id']} ({t['goal']}) {t['status']}")
    return " | ".join(parts)


def missed(rows: list[dict[str, Any]]) -> list[str]:
    """Ids of the targets the run missed."""
    return [t["id"] for t in rows if t.get("status") == "MISS"]
