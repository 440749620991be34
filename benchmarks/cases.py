"""What the in-process benchmark measures: every case, its request and its checks.

A case names an application (built by :mod:`benchmarks.apps`) and a request shape,
with what a correct response looks like; :mod:`benchmarks.inprocess` runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import apps
from benchmarks.apps import AUTH_HEADER, ORIGIN, USER
from benchmarks.driver import Request
from middleware_stack.types import Scope

API = (("Origin", ORIGIN), (AUTH_HEADER, USER))
PREFLIGHT = (
    ("Origin", ORIGIN),
    ("Access-Control-Request-Method", "PUT"),
    ("Access-Control-Request-Headers", "content-type"),
)
CORS_GET = {"access-control-allow-origin": ORIGIN, "access-control-allow-credentials": "true"}
CORS_PRE = {"access-control-allow-origin": ORIGIN, "access-control-allow-methods": None}
STACKED = {"access-control-allow-origin": ORIGIN, "server-timing": None}


#: Applications whose requests pass the contrib timing layer (with ``count_record``).
TIMED_APPS = frozenset(
    {"S", "timing", "timing-floor", "S/B", "S/B-layers", "S/B-manual", "S/B-warn", "S/B-strict",
     "S/B-warn-noblock", "S/B-warn-floor"}
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    app: str
    request: Request
    #: for auth layers: what the app behind the layer must have seen in its scope
    probe: Callable[[Scope], str | None] | None = None

    @property
    def django(self) -> bool:
        return self.app in apps.DJANGO_APPS

    @property
    def records(self) -> bool:
        """Does the timing layer see this case, so each request calls ``on_record``?"""
        return self.app in TIMED_APPS


def _ours_saw(identity: str | None) -> Callable[[Scope], str | None]:
    def probe(scope: Scope) -> str | None:
        auth = scope.get("auth")
        got = getattr(auth, "identity", None)
        return None if got == identity else f"scope['auth'] identity {got!r}, expected {identity!r}"

    return probe


def _hand_saw(identity: str | None) -> Callable[[Scope], str | None]:
    def probe(scope: Scope) -> str | None:
        got = scope.get("user")
        return None if got == identity else f"scope['user'] {got!r}, expected {identity!r}"

    return probe


def _get(expect: dict[str, str | None] | None = None, headers: Any = API, **kw: Any) -> Request:
    return Request(headers=headers, expect=expect or {}, **kw)


def _preflight(status: int, path: str = "/async/") -> Request:
    return Request("OPTIONS", path, PREFLIGHT, status=status, expect=CORS_PRE)


CASES: tuple[Case, ...] = (
    # Django, a GET from a browser app on another origin, identified by the proxy.
    Case("A", "A", _get()),
    Case("A sync", "A", _get(path="/sync/")),
    Case("S0", "S0", _get()),
    Case("S0 sync", "S0", _get(path="/sync/")),
    Case("S", "S", _get(STACKED)),
    Case("H", "H", _get(STACKED)),
    Case("D", "D", _get({"access-control-allow-origin": ORIGIN})),
    Case("E", "E", _get()),
    Case("A startproject", "A-mw", _get()),
    Case("S0 startproject", "S0-mw", _get()),
    Case("S0 startproject sync", "S0-mw", _get(path="/sync/")),
    # Django under WSGI: plain, and through one hand-off (the floor). An async view under
    # plain WSGI would need async_to_sync on the loop's own thread, so only the floor
    # has an async-view case.
    Case("W sync", "W", _get(path="/sync/")),
    Case("W-floor sync", "W-floor", _get(path="/sync/")),
    Case("W startproject sync", "W-mw", _get(path="/sync/")),
    Case("W-floor startproject sync", "W-floor-mw", _get(path="/sync/")),
    Case("W-floor startproject", "W-floor-mw", _get()),
    # Preflights through the Django configurations.
    Case("S preflight", "S", _preflight(204)),
    Case("H preflight", "H", _preflight(200)),
    Case("D preflight", "D", _preflight(200)),
    # Around the raw app B.
    Case("B", "B", _get()),
    Case("B+stack", "B+stack", _get()),
    Case("cors GET", "cors", _get({**CORS_GET, "vary": None}, headers=API[:1])),
    Case("cors-starlette GET", "cors-starlette", _get({**CORS_GET, "vary": None}, headers=API[:1])),
    Case("cors preflight", "cors", _preflight(204)),
    Case("cors-starlette preflight", "cors-starlette", _preflight(200)),
    Case("timing", "timing", _get({"server-timing": None}, headers=())),
    Case("timing-hand", "timing-hand", _get({"server-timing": None}, headers=())),
    Case("timing-floor", "timing-floor", _get({"server-timing": None}, headers=())),
    Case("auth trusted", "auth", _get(headers=API[1:]), _ours_saw(USER)),
    Case("auth-hand trusted", "auth-hand", _get(headers=API[1:]), _hand_saw(USER)),
    Case("auth anonymous", "auth", _get(headers=()), _ours_saw(None)),
    Case("auth-hand anonymous", "auth-hand", _get(headers=()), _hand_saw(None)),
    Case("S/B", "S/B", _get(STACKED)),
    Case("S/B-layers", "S/B-layers", _get(STACKED)),
    Case("S/B-manual", "S/B-manual", _get(STACKED)),
    Case("H/B", "H/B", _get(STACKED)),
    Case("S/B-warn", "S/B-warn", _get(STACKED)),
    Case("S/B-strict", "S/B-strict", _get(STACKED)),
    Case("S/B-warn-noblock", "S/B-warn-noblock", _get(STACKED)),
    Case("S/B-warn-floor", "S/B-warn-floor", _get(STACKED)),
)

#: (name, app) held open for the memory benchmark; "B hold" is the harness's own share.
MEMORY = (("A", "A"), ("S", "S"), ("B hold", "B"))
