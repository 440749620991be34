"""Turn a result into the target ratios, Markdown and reST tables, and PNG plots.

Every ratio is computed from one run. It is refused (never printed) when any request of
the run failed, and marked unavailable when a configuration it needs is. Spread is the
range of the same ratio computed per repeat: the cases of one repeat ran back to back.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: (id, what, kind, case names, comparison, goal, unit)
TARGETS: tuple[tuple[str, str, str, tuple[str, ...], str | None, float | None, str], ...] = (
    ("cors_get", "CORS simple GET: added time, contrib / Starlette", "added_ratio",
     ("cors GET", "cors-starlette GET", "B"), "<=", 0.5, "x"),
    ("cors_preflight", "CORS preflight: added time, contrib / Starlette", "added_ratio",
     ("cors preflight", "cors-starlette preflight", "B"), "<=", 0.7, "x"),
    ("timing_added", "Timing (one on_record): added time over B", "added",
     ("timing", "B"), "<=", 1.2, "µs"),
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
    ("preflight_D_over_S", "Preflight: through D (django-cors-headers) / through S", "ratio",
     ("D preflight", "S preflight"), ">=", 50.0, "x"),
    ("checks_warn_over_off", "checks='warn' / 'off', 3 layers around B", "ratio",
     ("S/B-warn", "S/B"), "<=", 3.0, "x"),
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
    ("e2e_preflight_S_over_D", "uvicorn + wrk preflight req/s, S / D", "e2e",
     ("S preflight", "D preflight"), None, None, "x"),
)  # fmt: skip

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


def _value(kind: str, names: Sequence[str], result: dict[str, Any]) -> tuple[Any, Any, str]:
    """(value, (lo, hi) or None, why unavailable or '')."""
    inproc = result.get("inprocess") or {}
    cases = inproc.get("cases", {})
    if kind in ("e2e", "e2e_cpu"):
        key = "rps" if kind == "e2e" else "cpu_us_per_request"
        e2e = result.get("e2e") or {}
        eps = e2e.get("endpoints", {})
        if "unavailable" in e2e or not eps:
            return None, None, e2e.get("unavailable", "end-to-end not run (--no-e2e)")
        for n in names:
            if n not in eps or not eps[n].get("runs"):
                return None, None, eps.get(n, {}).get("unavailable", f"{n} not run")
        by_round = [{r["round"]: r[key] for r in eps[n]["runs"] if key in r} for n in names]
        ratios = [by_round[0][r] / by_round[1][r] for r in by_round[0] if r in by_round[1]]
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
    if kind == "threads":
        v = cases[names[0]].get("threads_per_request")
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


# -- text --------------------------------------------------------------------------------


def _num(v: float, unit: str = "") -> str:
    if unit == "µs" or abs(v) < 10:
        return f"{v:.2f}{unit}" if abs(v) < 100 else f"{v:.0f}{unit}"
    return f"{v:.1f}{unit}" if abs(v) < 1000 else f"{v:.0f}{unit}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], fmt: str) -> str:
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for r in [head, *rows]:
        lines.append("   * - " + (r[0] or "\\"))
        lines += ["     - " + (c.replace("|", "\\|") or "\\") for c in r[1:]]
    return "\n".join(lines)


def inprocess_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, c in (result.get("inprocess") or {}).get("cases", {}).items():
        st = c.get("stats_us", {})
        if "unavailable" in c:
            cells = ["unavailable", "", "", ""]
        elif c.get("failures"):
            cells = ["FAILED: " + c["failures"][0][:80], "", "", ""]
        elif not st:
            cells = ["-", "", "", ""]
        else:
            cells = [
                _num(st["median"]),
                f"{_num(st['q1'])}{TO}{_num(st['q3'])}",
                f"{_num(st['min'])}{TO}{_num(st['max'])}",
                f"{c['threads_per_request']:g}" if "threads_per_request" in c else "",
            ]
        rows.append([name, c["description"], c["request"], *cells])
    return rows


def target_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for t in result.get("targets") or targets(result):
        if "value" in t:
            value = _num(t["value"], t["unit"])
            spread = t.get("spread")
            sp = f"{_num(spread[0], t['unit'])}{TO}{_num(spread[1], t['unit'])}" if spread else ""
            verdict = t["status"]
        else:
            value, sp, verdict = "—", "", f"{t['status']}: {t.get('why', '')}"[:90]
        rows.append([t["what"], value, t["goal"] or "(reported)", sp, verdict])
    return rows


def memory_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, m in (result.get("inprocess") or {}).get("memory", {}).items():
        rows.append(
            [name, str(m["concurrency"]), f"{m['bytes_per_request'] / 1024:.1f}",
             f"{m['bytes_total'] / 2**20:.1f}"]
        )  # fmt: skip
    return rows


def e2e_rows(result: dict[str, Any]) -> list[list[str]]:
    e2e = result.get("e2e") or {}
    eps = e2e.get("endpoints", {})
    a_runs = {r["round"]: r["rps"] for r in eps.get("A", {}).get("runs", []) if "rps" in r}
    rows = []
    for name, ep in eps.items():
        runs = [r for r in ep.get("runs", []) if "rps" in r]
        if not runs:
            why = ep.get("unavailable") or "; ".join(e2e.get("failures", {}).get(name, []))
            rows.append([name, why[:80] or "-", "", "", "", "", ""])
            continue
        rps = [r["rps"] for r in runs]
        ratios = [r["rps"] / a_runs[r["round"]] for r in runs if r["round"] in a_runs]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> str:
            vals = [r[key] for r in runs if key in r]
            return _num(_med(vals)) if vals else "-"

        rows.append(
            [
                name,
                f"{_med(rps):.0f} ({min(rps):.0f}{TO}{max(rps):.0f})",
                f"{_med(ratios):.2f} ({min(ratios):.2f}{TO}{max(ratios):.2f})" if ratios else "-",
                med("p50_ms"),
                med("p99_ms"),
                med("cpu_us_per_request"),
                med("server_rss_mb"),
            ]
        )
    return rows


def render(result: dict[str, Any], fmt: str = "md") -> str:
    """All tables, in Markdown (``md``) or reST (``rst``)."""
    meta = result.get("meta", {})
    inproc = result.get("inprocess") or {}
    s = inproc.get("settings", {})
    h = "### " if fmt == "md" else ""

    def heading(text: str) -> str:
        return f"{h}{text}" if fmt == "md" else f"{text}\n{'~' * len(text)}"

    out = []
    problems = failed(result)
    if problems:
        out.append(
            "**FAILED REQUESTS: ratios are refused for this run.**\n\n"
            + "\n".join(f"- {p}" for p in problems[:30])
        )
    noise = [f"{k} (x{v})" for k, v in inproc.get("log_records", {}).items()]
    noise += inproc.get("warnings", [])
    if noise:
        out.append(
            "**Logged or warned during the run** (a clean stack should be silent):\n\n"
            + "\n".join(f"- {n}" for n in noise[:20])
        )
    if inproc:
        out.append(heading("In-process: µs per request"))
        out.append(
            f"Median of {s.get('repeats')} batches ({s.get('n_django')} requests per batch on "
            f"Django, {s.get('n_raw')} around B), quartiles and min{TO}max of the batch means; "
            f"event loop {inproc.get('loop')}. Threads: OS threads started per request."
        )
        out.append(
            _table(
                [
                    "case",
                    "configuration",
                    "request",
                    "median µs",
                    "q1-q3",
                    "min-max",
                    "threads/req",
                ],
                inprocess_rows(result),
                fmt,
            )
        )
    out.append(heading("Targets and ratios (one run)"))
    out.append("Spread: the same ratio computed per repeat (or per e2e round), min-max.")
    out.append(_table(["ratio", "measured", "goal", "spread", "verdict"], target_rows(result), fmt))
    if inproc.get("memory"):
        out.append(heading("Memory per in-flight request (tracemalloc)"))
        out.append(
            "Requests held open inside the view at once; 'B hold' is the harness's own "
            "share (task, exchange, scope copy) around a raw app."
        )
        out.append(
            _table(
                ["configuration", "in flight", "KiB per request", "MiB total"],
                memory_rows(result),
                fmt,
            )
        )
    e2e = result.get("e2e")
    if e2e:
        st = e2e.get("settings", {})
        out.append(heading("End-to-end: uvicorn + wrk on loopback"))
        out.append(
            f"{e2e.get('server')}; wrk -t1 -c32 -d{st.get('seconds'):g}s --latency, "
            f"{st.get('rounds')} interleaved rounds. Medians over rounds; ratio to A per round."
        )
        out.append(
            _table(
                [
                    "endpoint",
                    "req/s (min-max)",
                    "ratio to A (min-max)",
                    "p50 ms",
                    "p99 ms",
                    "server CPU µs/req",
                    "server RSS MB",
                ],
                e2e_rows(result),
                fmt,
            )
        )
    if meta:
        load = meta.get("load", {})
        out.append(
            f"Machine: {meta.get('cpu')} ({meta.get('cpus')} CPUs), {meta.get('platform')}; "
            f"Python {meta.get('python')}, Django {meta.get('django')}, asgiref "
            f"{meta.get('asgiref')}, Starlette {meta.get('starlette')}, uvicorn "
            f"{meta.get('uvicorn')}. Load average before/after: {load.get('loadavg_before')} / "
            f"{load.get('loadavg_after')}; other processes used "
            f"{load.get('other_busy_cpus', '?')} CPUs on average during the run."
        )
    if result.get("command"):
        code = f"`{result['command']}`" if fmt == "md" else f"``{result['command']}``"
        out.append(f"Command: {code} ({result.get('mode')} mode, {meta.get('date', '')}).")
    return "\n\n".join(out) + "\n"


# -- plots -------------------------------------------------------------------------------

DJANGO_PLOT = ("A", "A sync", "S0", "S0 sync", "S", "H", "D", "E", "A startproject", "S0 startproject",
               "S preflight", "H preflight", "D preflight")  # fmt: skip
RAW_PLOT = ("B", "B+stack", "S/B-layers", "H/B", "S/B", "S/B-manual", "S/B-warn", "S/B-strict",
            "S/B-warn-noblock", "S/B-warn-floor")  # fmt: skip
LAYER_PAIRS = (
    ("CORS GET", "cors GET", "cors-starlette GET"),
    ("CORS preflight", "cors preflight", "cors-starlette preflight"),
    ("timing", "timing", "timing-hand"),
    ("auth trusted", "auth trusted", "auth-hand trusted"),
    ("auth anonymous", "auth anonymous", "auth-hand anonymous"),
    ("3 layers (no boundary)", "S/B-layers", "H/B"),
)


def plots(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """``bench-inprocess.png``, ``bench-layers.png`` and (with e2e) ``bench-e2e.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = (result.get("inprocess") or {}).get("cases", {})
    made: list[Path] = []

    def stats(name: str) -> dict[str, float] | None:
        c = cases.get(name)
        return c["stats_us"] if c and c.get("stats_us") and not c.get("failures") else None

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, names, title, log in (
        (axes[0], DJANGO_PLOT, "On Django (log scale)", True),
        (axes[1], RAW_PLOT, "Around the raw app B", False),
    ):
        shown = [(n, st) for n in names if (st := stats(n))]
        if not shown:
            ax.set_visible(False)
            continue
        y = range(len(shown))
        med = [st["median"] for _, st in shown]
        err = [[st["median"] - st["min"] for _, st in shown],
               [st["max"] - st["median"] for _, st in shown]]  # fmt: skip
        colors = ["#c44e52" if n.startswith(("A", "D", "E", "H")) else "#4c72b0" for n, _ in shown]
        ax.barh(list(y), med, xerr=err, color=colors, capsize=3)
        ax.set_yticks(list(y), [n for n, _ in shown])
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        for i, (v, (_, st)) in enumerate(zip(med, shown, strict=True)):
            ax.text(st["max"] * (1.08 if log else 1.0) + (0 if log else 0.5), i, _num(v),
                    va="center", fontsize=8)  # fmt: skip
        ax.set_xlabel("µs per request (median, whiskers min-max)")
        ax.set_title(title)
    fig.suptitle("middleware_stack in-process benchmark: µs per request")
    fig.tight_layout()
    path = out_dir / "bench-inprocess.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    made.append(path)

    base = stats("B")
    pairs = [(label, a, b) for label, a, b in LAYER_PAIRS if stats(a) and stats(b)]
    if base and pairs:
        fig, ax = plt.subplots(figsize=(9, 4.2))
        width = 0.38
        for offset, idx, label, color in ((-width / 2, 1, "contrib (ours)", "#4c72b0"),
                                           (width / 2, 2, "Starlette / hand-written", "#c44e52")):  # fmt: skip
            vals, lo, hi = [], [], []
            for pair in pairs:
                name = pair[idx]
                per = [
                    x - b
                    for x, b in zip(
                        cases[name]["samples_us"], cases["B"]["samples_us"], strict=False
                    )
                ]
                v = stats(name)["median"] - base["median"]  # type: ignore[index]
                vals.append(v)
                lo.append(max(0.0, v - min(per)) if per else 0.0)
                hi.append(max(0.0, max(per) - v) if per else 0.0)
            xs = [i + offset for i in range(len(pairs))]
            ax.bar(xs, vals, width, yerr=[lo, hi], label=label, color=color, capsize=3)
            for x, v, h in zip(xs, vals, hi, strict=True):
                ax.text(x, v + h, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
        # Wrapped, so that neighbouring labels never run into each other.
        ax.set_xticks(range(len(pairs)), [textwrap.fill(p[0], 14) for p in pairs])
        ax.set_ylabel("µs added over B (median; whiskers per-repeat range)")
        ax.set_title("Per-layer cost around a raw ASGI app")
        ax.legend()
        fig.tight_layout()
        path = out_dir / "bench-layers.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)

    eps = (result.get("e2e") or {}).get("endpoints", {})
    shown_e2e = [(n, [r["rps"] for r in ep.get("runs", []) if "rps" in r]) for n, ep in eps.items()]
    shown_e2e = [(n, v) for n, v in shown_e2e if v]
    if shown_e2e:
        fig, ax = plt.subplots(figsize=(9, 4))
        for i, (_n, vals) in enumerate(shown_e2e):
            ax.bar(i, _med(vals), color="#4c72b0" if _n.startswith(("S", "B")) else "#c44e52")
            ax.plot([i] * len(vals), vals, "k.", markersize=4)
            ax.text(i, _med(vals), f"{_med(vals):.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(shown_e2e)), [n for n, _ in shown_e2e], rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel("req/s, log scale (dots: rounds)")
        ax.set_title("uvicorn (1 worker) + wrk -c32 on loopback")
        fig.tight_layout()
        path = out_dir / "bench-e2e.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)
    return made
