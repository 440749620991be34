"""The harness's issue-21 parts: the WSGI floor, the hand-over counter, the summary line
and ``--strict``.

No timing is asserted (the machine is shared): only what the harness counts and how it
reports and exits.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import benchmarks.__main__ as bench_main
from benchmarks import apps, runner, targets
from benchmarks.driver import count_handovers, count_thread_starts
from benchmarks.inprocess import run_inprocess
from middleware_stack.threads import WorkerExecutor

WSGI_CASES = ("W startproject sync", "W-floor startproject sync", "W sync", "W-floor sync")
TINY = {"n_django": 4, "n_raw": 40, "repeats": 5, "concurrency": 0}


@pytest.fixture(scope="module")
def wsgi_run() -> dict[str, Any]:
    with apps.django_environment():
        return run_inprocess(n_django=6, n_raw=20, repeats=5, concurrency=0, only=WSGI_CASES)


def test_the_wsgi_floor_hands_each_request_over_exactly_once(wsgi_run):
    cases = wsgi_run["cases"]
    assert wsgi_run["failures"] == {}
    for name in ("W-floor startproject sync", "W-floor sync"):
        assert cases[name]["handovers_per_request"] == 1, name
        assert cases[name]["handovers_by_executor"] == {"ThreadPoolExecutor": 1}, name
        assert cases[name]["threads_per_request"] == 0, name  # its one thread is reused


def test_plain_wsgi_runs_on_the_calling_thread_without_a_hand_over(wsgi_run):
    for name in ("W startproject sync", "W sync"):
        assert wsgi_run["cases"][name]["handovers_per_request"] == 0, name
        assert wsgi_run["cases"][name]["threads_per_request"] == 0, name


async def test_the_wsgi_floor_runs_django_on_its_one_pool_thread():
    from benchmarks.driver import Exchange
    from benchmarks.wsgi import WSGIFloor, close_pools

    seen: list[str] = []

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(threading.current_thread().name)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    app = WSGIFloor(wsgi)
    try:
        for _ in range(3):
            ex = Exchange()
            await app({"method": "GET", "path": "/", "headers": [], "server": ("h", 1),
                       "client": ("c", 2)}, ex.receive, ex.send)  # fmt: skip
            assert ex.status == 200 and ex.finished
    finally:
        close_pools()
    assert len(set(seen)) == 1 and seen[0].startswith("bench-wsgi-floor")


async def test_the_hand_over_counter_counts_each_submit_by_executor_class():
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1)
    worker = WorkerExecutor()
    try:
        await loop.run_in_executor(pool, int)  # warm: the threads start outside the block
        await asyncio.wrap_future(worker.submit(int))
        with count_handovers() as counts, count_thread_starts() as started:
            for _ in range(3):
                await loop.run_in_executor(pool, int)
            await asyncio.wrap_future(worker.submit(int))
            await asyncio.wrap_future(worker.submit(int))
        assert counts == {"ThreadPoolExecutor": 3, "WorkerExecutor": 2}
        assert started == [0]
        await loop.run_in_executor(pool, int)  # after the block: not counted, submit restored
        assert counts == {"ThreadPoolExecutor": 3, "WorkerExecutor": 2}
        assert "counted" not in ThreadPoolExecutor.submit.__name__
    finally:
        pool.shutdown()
        worker.shutdown()


# -- summary line and --strict -----------------------------------------------------------

SUMMARY = re.compile(r"^targets: (\d+) of (\d+) missed( \| [^|\n]+)+$")


@pytest.fixture(scope="module")
def small_result() -> dict[str, Any]:
    only = ("B", "timing", "timing-floor", "S/B", "S/B-warn", "S/B-warn-floor")
    with apps.django_environment():
        inproc = run_inprocess(n_django=2, n_raw=40, repeats=5, concurrency=0, only=only)
    result: dict[str, Any] = {"mode": "quick", "meta": {}, "inprocess": inproc}
    result["targets"] = targets.targets(result)
    return result


def _with_timing_added(result: dict[str, Any], factor: float) -> dict[str, Any]:
    """The result with contrib timing's added time made ``factor`` times the floor's."""
    out = json.loads(json.dumps(result))
    cases = out["inprocess"]["cases"]
    n = len(cases["B"]["samples_us"])
    cases["B"]["samples_us"] = [10.0] * n
    cases["timing-floor"]["samples_us"] = [12.0] * n
    cases["timing"]["samples_us"] = [10.0 + 2.0 * factor] * n
    group = out["inprocess"]["interleaved"]["timing,timing-floor,B"]
    r = len(group["B"])
    group.update(B=[10.0] * r, **{"timing-floor": [12.0] * r, "timing": [10.0 + 2.0 * factor] * r})
    out["targets"] = targets.targets(out)
    return out


def test_added_time_targets_come_from_the_interleaved_rounds(small_result):
    """The median of per-round ratios, not the ratio of per-case medians: a base whose
    time switches between two speeds moves the latter, and only between rounds."""
    out = json.loads(json.dumps(small_result))
    inproc = out["inprocess"]
    assert len(inproc["interleaved"]["timing,timing-floor,B"]["B"]) == 5 * 5  # 5 x repeats
    # Medians of these columns would give (4 - 1) / (3 - 1) = 1.5 and 3 - 1 = 2; within
    # each round the ratio is 2, 2, 1.5, 2, 2 and the floor adds 1, 1, 2, 1, 1.
    inproc["interleaved"]["timing,timing-floor,B"] = {
        "B": [1.0, 1.0, 1.0, 2.0, 2.0],
        "timing-floor": [2.0, 2.0, 3.0, 3.0, 3.0],
        "timing": [3.0, 3.0, 4.0, 4.0, 4.0],
    }
    rows = {t["id"]: t for t in targets.targets(out)}
    assert rows["timing_over_floor"]["value"] == pytest.approx(2.0)
    assert rows["timing_floor_added"]["value"] == pytest.approx(1.0)
    assert rows["timing_over_floor"]["spread"] == pytest.approx((1.5, 2.0))
    del inproc["interleaved"]  # results without the rounds fall back to the medians
    rows = {t["id"]: t for t in targets.targets(out)}
    b, f, t = (
        statistics.median(inproc["cases"][n]["samples_us"]) for n in ("B", "timing-floor", "timing")
    )
    assert rows["timing_over_floor"]["value"] == pytest.approx((t - b) / (f - b))


def test_summary_is_one_line_with_each_target_measured_against_its_goal(small_result):
    line = targets.summary(_with_timing_added(small_result, 1.0)["targets"])
    assert "\n" not in line
    m = SUMMARY.match(line)
    assert m, line
    assert int(m.group(2)) == sum(1 for t in targets.TARGETS if t[4] is not None)
    assert "timing_over_floor 1x (<= 1.6x) pass" in line
    assert "checks_warn_over_floor " in line
    assert "wsgi_stack_over_floor (<= 1.3x) unavailable" in line  # not in this run
    assert "e2e_stack_over_gunicorn_sync (>= 1.2x) unavailable" in line


def test_summary_counts_and_names_a_miss(small_result):
    line = targets.summary(_with_timing_added(small_result, 2.0)["targets"])
    missed = int(SUMMARY.match(line).group(1))  # type: ignore[union-attr]
    assert missed >= 1
    assert "timing_over_floor 2x (<= 1.6x) MISS" in line


def _main(monkeypatch: pytest.MonkeyPatch, result: dict[str, Any], tmp: Path, *flags: str) -> int:
    monkeypatch.setattr(runner, "run", lambda **kw: result)
    monkeypatch.setattr(runner, "write", lambda *a, **kw: [])
    return bench_main.main(["--quick", "--no-e2e", "--out", str(tmp), *flags])


def test_strict_exits_non_zero_on_a_missed_target_and_default_stays_zero(
    small_result, monkeypatch, tmp_path, capsys
):
    missing = _with_timing_added(small_result, 2.0)
    assert "timing_over_floor" in targets.missed(missing["targets"])
    assert _main(monkeypatch, missing, tmp_path) == 0
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    assert SUMMARY.match(out[-1]), out[-1]  # the run ends with the summary line
    assert _main(monkeypatch, missing, tmp_path, "--strict") == bench_main.MISSED != 0


def test_strict_exits_zero_when_nothing_is_missed(small_result, monkeypatch, tmp_path):
    clean = json.loads(json.dumps(small_result))
    clean["targets"] = [
        {**t, "status": "pass"} if t["status"] == "MISS" else t for t in clean["targets"]
    ]
    assert _main(monkeypatch, clean, tmp_path, "--strict") == 0


def test_failed_requests_still_exit_one_under_strict(small_result, monkeypatch, tmp_path):
    broken = _with_timing_added(small_result, 2.0)
    broken["inprocess"]["failures"] = {"timing": ["check: status 500, expected 200"]}
    broken["targets"] = targets.targets(broken)
    assert _main(monkeypatch, broken, tmp_path, "--strict") == 1


async def test_the_sketch_serves_startproject_middleware_with_one_hand_over_per_request():
    """The e2e bound (issue 21's sketch) runs the same project: startproject's
    middleware answers (X-Frame-Options), on its one pool thread, one submit each."""
    from benchmarks.driver import Recording
    from benchmarks.sketch import Sketch

    with apps.django_environment():
        from benchmarks.django_settings import STARTPROJECT_MIDDLEWARE

        app = Sketch(STARTPROJECT_MIDDLEWARE)
        scope = {"type": "http", "method": "GET", "path": "/sync/", "raw_path": b"/sync/",
                 "root_path": "", "query_string": b"", "headers": [(b"host", b"testserver")],
                 "server": ("testserver", 80), "client": ("127.0.0.1", 2)}  # fmt: skip
        try:
            with count_handovers() as handovers:
                for _ in range(3):
                    ex = Recording()
                    await app(dict(scope), ex.receive, ex.send)
                    assert ex.status == 200 and ex.body == b"hello"
                    assert (b"X-Frame-Options", b"DENY") in ex.headers
        finally:
            app.pool.shutdown(wait=True)
    assert handovers == {"ThreadPoolExecutor": 3}


def test_the_spread_ratio_leaves_out_rounds_whose_load_went_to_one_worker() -> None:
    """uvicorn's two workers share one socket; a round in which one took all of wrk's
    connections is left out of the reported 'spread' ratio (not out of the target)."""
    from benchmarks.targets import GUNICORN_GTHREAD, GUNICORN_SYNC, UVICORN_MW, targets

    def runs(rps: list[float], shares: list[float]) -> dict[str, Any]:
        return {
            "runs": [
                {"round": i, "rps": r, "busiest_worker_cpu_share": s}
                for i, (r, s) in enumerate(zip(rps, shares, strict=True))
            ]
        }

    result = {
        "e2e": {
            "endpoints": {
                UVICORN_MW: runs([1300, 600, 1250], [0.52, 1.0, 0.5]),
                GUNICORN_SYNC: runs([1000, 1000, 1000], [0.5, 0.51, 0.5]),
                # gthread's own skew (one worker accepting every connection) counts too
                GUNICORN_GTHREAD: runs([500, 1000, 1250], [1.0, 0.5, 0.5]),
            }
        }
    }
    rows = {t["id"]: t for t in targets(result)}
    assert rows["e2e_stack_over_gunicorn_sync"]["value"] == pytest.approx(1.25)  # all rounds
    assert rows["e2e_stack_over_gunicorn_sync_spread"]["value"] == pytest.approx(1.275)
    assert rows["e2e_stack_over_gunicorn_sync_spread"]["spread"] == pytest.approx((1.25, 1.3))
    assert rows["e2e_stack_over_gthread"]["value"] == pytest.approx(1.0)  # 2.6, 0.6, 1.0
    assert rows["e2e_stack_over_gthread_spread"]["value"] == pytest.approx(1.0)  # round 2 only


def test_the_interleaved_ratio_is_taken_within_each_round() -> None:
    """A round where every case ran slow (a noisy neighbour) still gives that round's
    own ratio; a round whose y equals its base is left out rather than dividing by 0."""
    from benchmarks.interleaved import added_ratios

    x = [3.0, 6.0, 2.0]
    y = [2.0, 4.0, 1.0]
    b = [1.0, 2.0, 1.0]
    assert added_ratios(x, y, b) == [2.0, 2.0]


def test_the_interleaved_command_prints_the_median_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks.interleaved import main

    main(["--batch", "50", "--rounds", "3"])
    out = capsys.readouterr().out
    assert "3 rounds of 50 requests per case" in out
    assert "(timing - B) / (timing-floor - B), per round: median " in out
