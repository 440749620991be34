"""Turn a result into Markdown and reST tables and PNG plots (targets: :mod:`benchmarks.targets`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.targets import NOISE, TARGETS, TO, _med, failed, targets

__all__ = ["NOISE", "TARGETS", "failed", "plots", "render", "targets"]


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
            cells = ["unavailable", "", "", "", ""]
        elif c.get("failures"):
            cells = ["FAILED: " + c["failures"][0][:80], "", "", "", ""]
        elif not st:
            cells = ["-", "", "", "", ""]
        else:
            cells = [
                _num(st["median"]),
                f"{_num(st['q1'])}{TO}{_num(st['q3'])}",
                f"{_num(st['min'])}{TO}{_num(st['max'])}",
                f"{c['threads_per_request']:g}" if "threads_per_request" in c else "",
                f"{c['handovers_per_request']:g}" if "handovers_per_request" in c else "",
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
            f"event loop {inproc.get('loop')}. Threads: OS threads started per request; "
            "hand-overs: executor submissions (work handed to another thread) per request."
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
                    "hand-overs/req",
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
            f"{st.get('rounds')} interleaved rounds. Medians over rounds; ratio to A per round. "
            f"The WSGI comparison (full mode): two worker processes each, wrk "
            f"-c{st.get('wsgi_connections', 16)}, startproject's MIDDLEWARE, sync view; server "
            "CPU and RSS summed over the server's processes."
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
            f"{load.get('other_busy_cpus', '?')} CPUs on average during the run"
            + (
                f" ({load['stolen_cpus']} of them stolen by the hypervisor)."
                if "stolen_cpus" in load
                else "."
            )
        )
    if result.get("command"):
        code = f"`{result['command']}`" if fmt == "md" else f"``{result['command']}``"
        out.append(f"Command: {code} ({result.get('mode')} mode, {meta.get('date', '')}).")
    return "\n\n".join(out) + "\n"


# -- plots -------------------------------------------------------------------------------

DJANGO_PLOT = ("A", "A sync", "S0", "S0 sync", "S", "H", "D", "E", "A startproject", "S0 startproject",
               "S0 startproject sync", "W sync", "W-floor sync", "W startproject sync",
               "W-floor startproject sync", "W-floor startproject",
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
        colors = [
            "#c44e52" if n.startswith(("A", "D", "E", "H", "W")) else "#4c72b0" for n, _ in shown
        ]
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
            ax.bar(
                i,
                _med(vals),
                color="#4c72b0" if _n.startswith(("S", "B", "uvicorn")) else "#c44e52",
            )
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
