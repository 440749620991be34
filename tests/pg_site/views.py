"""Views that exercise the database from sync views, async views and sync middleware."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import request_finished, request_started
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

SIGNALS = {"started": 0, "finished": 0}
MIDDLEWARE_THREADS: dict[str, str] = {}


def _count(name: str) -> Callable[..., None]:
    def receiver(**kwargs: Any) -> None:
        SIGNALS[name] += 1

    return receiver


_on_started = _count("started")
_on_finished = _count("finished")
request_started.connect(_on_started)
request_finished.connect(_on_finished)


def sync_only_middleware(get_response: Callable[[HttpRequest], Any]) -> Callable[..., Any]:
    """A classic sync-only Django middleware: Django runs it in the request's thread."""

    def middleware(request: HttpRequest) -> Any:
        request.middleware_thread = threading.current_thread().name  # type: ignore[attr-defined]
        return get_response(request)

    return middleware


def _query(n: int) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::int, pg_backend_pid()", [n])
        value, pid = cursor.fetchone()
    return {"n": value, "pid": pid, "thread": threading.current_thread().name}


def db(request: HttpRequest) -> JsonResponse:
    n = int(request.GET.get("n", "0"))
    data = _query(n)
    data["middleware_thread"] = request.middleware_thread  # type: ignore[attr-defined]
    return JsonResponse(data)


def sleep(request: HttpRequest) -> JsonResponse:
    """A query that waits in PostgreSQL (``pg_sleep``): a view blocked on I/O."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [float(request.GET.get("s", "1"))])
    return JsonResponse({"thread": threading.current_thread().name})


async def adb(request: HttpRequest) -> JsonResponse:
    n = int(request.GET.get("n", "0"))
    data = await sync_to_async(_query)(n)
    data["middleware_thread"] = request.middleware_thread  # type: ignore[attr-defined]
    return JsonResponse(data)


def fail_in_transaction(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS ms_rows (id serial primary key, v text)")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO ms_rows (v) VALUES ('half-done')")
        raise RuntimeError("fails mid-transaction")


def tx_state(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS ms_rows (id serial primary key, v text)")
        cursor.execute("SELECT count(*) FROM ms_rows WHERE v = 'half-done'")
        (rows,) = cursor.fetchone()
        cursor.execute("SELECT txid_current_if_assigned() IS NULL")
        (no_txid,) = cursor.fetchone()
    return JsonResponse(
        {
            "in_atomic_block": connection.in_atomic_block,
            "autocommit": connection.get_autocommit(),
            "half_done_rows": rows,
            "thread": threading.current_thread().name,
            "no_txid": no_txid,
        }
    )


def stats(request: HttpRequest) -> JsonResponse:
    from tests.pg_site.asgi import application

    pool = application.boundary.pool
    names = sorted(t.name for t in threading.enumerate())
    return JsonResponse(
        {
            "active_threads": threading.active_count(),
            "thread_names": names,
            "pool_live": pool.live if pool else None,
            "pool_idle": pool.idle if pool else None,
            "pool_started": pool.threads_started if pool else None,
            "pool_max": pool.max_threads if pool else None,
            "pool_waited": pool.waited if pool else None,
            "pool_spilled": pool.spilled if pool else None,
            "signals": SIGNALS,
            "requests_path": application.boundary.path_note,
        }
    )


def orm_verify(token: str) -> str | None:
    """A sync bearer ``verify`` that asks the database, as a token table lookup would."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s = 'good'", [token])
        (ok,) = cursor.fetchone()
    return "alice" if ok else None


def dirty(request: HttpRequest, how: str) -> HttpResponse:
    """Leave the thread's connection in a state no later request may inherit."""
    if how == "atomic":  # transaction.atomic() entered and never left
        transaction.atomic().__enter__()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    elif how == "close-in-atomic":  # the connection closed inside an atomic block left open
        transaction.atomic().__enter__()
        connection.close()
    elif how == "begin":  # a raw BEGIN, never committed
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1")
    elif how == "app-name":  # a session setting changed with SET
        with connection.cursor() as cursor:
            cursor.execute("SET application_name = 'leaked'")
    else:
        return HttpResponse(status=404)
    return HttpResponse(how)


def db_state(request: HttpRequest) -> JsonResponse:
    """What a request finds on its thread's connection before it does anything."""
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "postgresql":
        open_transaction = raw.info.transaction_status != 0
    else:
        open_transaction = raw.in_transaction
    data: dict[str, Any] = {
        "thread": threading.current_thread().name,
        "in_atomic_block": connection.in_atomic_block,
        "autocommit": connection.get_autocommit(),
        "open_transaction": open_transaction,
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_setting('application_name'), pg_backend_pid()")
            data["application_name"], data["pid"] = cursor.fetchone()
        else:
            cursor.execute("SELECT 1")
    return JsonResponse(data)


def slow_body(request: HttpRequest) -> JsonResponse:
    """A sync view behind a request body the client sends slowly."""
    return JsonResponse({"size": len(request.body), "thread": threading.current_thread().name})
