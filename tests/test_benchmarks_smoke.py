"""The benchmark harness runs, checks its responses, and refuses ratios after a failure.

Timings are never asserted (the machine is shared): only the structure of the result,
and the harness's own rules.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from benchmarks import apps, report, runner
from benchmarks.driver import Exchange, Request, check
from benchmarks.e2e import parse_wrk
from benchmarks.inprocess import CASES, run_inprocess

TINY = {"n_django": 4, "n_raw": 40, "repeats": 5, "concurrency": 8}


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return runner.run(mode="quick", e2e=False, overrides=TINY, command="smoke")


def test_quick_run_times_every_case_with_five_repeats_and_no_failures(result):
    cases = result["inprocess"]["cases"]
    assert set(cases) == {c.name for c in CASES}
    assert report.failed(result) == []
    for name, case in cases.items():
        if "unavailable" in case:
            continue
        assert len(case["samples_us"]) == TINY["repeats"], name
        stats = case["stats_us"]
        assert stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]


def test_clean_stacks_issue_no_runtime_warning_during_the_run(result):
    warned = result["inprocess"]["warnings"]
    assert not [w for w in warned if w.startswith("RuntimeWarning")], warned


def test_result_names_the_machine_and_versions_and_is_json(result, tmp_path):
    for key in ("python", "django", "asgiref", "cpu", "cpus", "load"):
        assert key in result["meta"]
    written = runner.write(result, tmp_path)
    assert json.loads((tmp_path / "latest.json").read_text())["mode"] == "quick"
    assert (tmp_path / "bench-inprocess.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bench-layers.png") in written


def test_bare_django_starts_threads_per_request_and_the_stack_does_not(result):
    cases = result["inprocess"]["cases"]
    assert cases["A"]["threads_per_request"] >= 1
    assert cases["S0"]["threads_per_request"] == 0
    assert cases["S0 sync"]["threads_per_request"] == 0


def test_quick_run_sets_the_stack_against_the_wsgi_floor_and_counts_hand_overs(result):
    rows = {t["id"]: t for t in result["targets"]}
    for tid in ("wsgi_stack_over_floor", "wsgi_stack_over_wsgi", "wsgi_stack_over_floor_async",
                "wsgi_stack_over_floor_empty", "handovers_S0_mw_sync", "timing_over_floor",
                "checks_warn_over_floor", "checks_warn_pct_of_django"):  # fmt: skip
        assert "value" in rows[tid], rows[tid]
    assert rows["handovers_floor"]["status"] == "pass"  # exactly one hand-off
    cases = result["inprocess"]["cases"]
    assert cases["S0 startproject sync"]["handovers_per_request"] >= 1
    assert cases["W startproject sync"]["handovers_per_request"] == 0
    assert rows["e2e_stack_over_gunicorn_sync"]["status"] == "unavailable"  # --no-e2e


def test_every_issue_target_is_computed_or_explained(result):
    rows = {t["id"]: t for t in result["targets"]}
    assert {t[0] for t in report.TARGETS} == set(rows)
    for t in rows.values():
        assert t["status"] in {"pass", "MISS", "report", "unavailable"}, t
        if t["status"] == "unavailable":
            assert t["why"]
    assert rows["e2e_S0_over_A"]["status"] == "unavailable"  # --no-e2e
    assert rows["memory_S_over_A"]["status"] == "report"


def test_markdown_shows_tables_and_targets(result):
    text = report.render(result, "md")
    assert "| case | configuration |" in text
    assert "Preflight: through D" in text
    assert "FAILED" not in text


def test_a_failed_request_refuses_every_ratio(result):
    broken = json.loads(json.dumps(result, default=str))
    broken["inprocess"]["failures"] = {"cors GET": ["check: status 500, expected 200"]}
    rows = report.targets(broken)
    assert {t["status"] for t in rows} == {"refused"}
    assert all("value" not in t for t in rows)
    text = report.render({**broken, "targets": rows}, "md")
    assert "ratios are refused" in text
    assert "cors GET: check: status 500" in text


async def test_receive_reports_disconnect_only_after_the_response_finished():
    seen: list[str] = []
    ex = Exchange()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        listener = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        assert not listener.done()  # a server keeps the connection while responding
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        seen.append((await listener)["type"])

    await app({}, ex.receive, ex.send)
    assert seen == ["http.request", "http.disconnect"]
    assert ex.status == 200 and ex.finished


async def test_check_reports_wrong_status_and_missing_headers():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    problems = await check(app, Request(expect={"server-timing": None}))
    assert "status 404, expected 200" in problems
    assert "missing header server-timing" in problems


def test_wrk_output_is_parsed_with_units_and_errors():
    text = """Running 2s test @ http://127.0.0.1:1/async/
  1 threads and 32 connections
  Latency Distribution
     50%  812.00us
     75%    1.10ms
     90%    1.50ms
     99%    3.20ms
  4000 requests in 2.00s, 500.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   1999.50
"""
    out = parse_wrk(text)
    assert out["rps"] == 1999.5
    assert out["requests"] == 4000
    assert out["p50_ms"] == pytest.approx(0.812)
    assert out["p99_ms"] == pytest.approx(3.2)
    assert out["socket_errors"] == 3
    assert out["non_2xx"] == 7


def test_a_layer_that_is_not_importable_is_unavailable_not_a_crash(monkeypatch):
    monkeypatch.setattr(apps, "CONTRIB_TIMING", "middleware_stack.contrib.nope.TimingMiddleware")
    only = ("B", "timing", "timing-hand", "S/B")
    out = run_inprocess(n_django=2, n_raw=20, repeats=5, concurrency=0, only=only)
    cases = out["cases"]
    assert "not importable" in cases["timing"]["unavailable"]
    assert "unavailable" in cases["S/B"]
    assert len(cases["timing-hand"]["samples_us"]) == 5
    assert out["failures"] == {}
    rows = {t["id"]: t for t in report.targets({"inprocess": out})}
    assert rows["timing_added"]["status"] == "unavailable"
    assert "not importable" in rows["timing_added"]["why"]
