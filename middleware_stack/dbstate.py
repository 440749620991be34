"""Database connections a request left dirty on a pooled worker thread: found and reset.

Why: Django's connections are per thread, and a pooled thread serves request after
request. A request that leaves ``transaction.atomic()`` open (or closes its connection
inside one), runs a raw ``BEGIN`` without ``COMMIT``, switches autocommit off, or
changes a session setting with ``SET`` would hand that state to the next request on the
thread: with an atomic block left open every later request on it fails. Stock ASGI
Django never reuses a thread, so it leaks none of this.

:func:`reset_dirty_connections` runs on the worker thread when a request releases it,
queued ahead of any later request's call. It looks only at connections this thread has
opened and only at local state (Django's transaction flags, the driver's transaction
status and the session parameters the server reports back), so a clean request costs no
round trip. A dirty connection is rolled back and closed, and Django's wrapper for it is
dropped, so the next request on the thread starts with a fresh one, as on a new thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

__all__ = ["dirty_reason", "reset_dirty_connections"]

logger = logging.getLogger("middleware_stack")

#: Session parameters PostgreSQL reports to the client on every change (GUC_REPORT),
#: readable without a round trip. ``search_path`` is reported from PostgreSQL 18.
PG_REPORTED = (
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "IntervalStyle",
    "is_superuser",
    "search_path",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
)
_PG_KEYS = tuple(name.encode() for name in PG_REPORTED)
_SESSION = "_middleware_stack_session"  # (raw connection, its reported parameters)

#: driver connection type -> function(raw) -> (reason or None, reported parameters)
_probes: dict[type, Callable[[Any], tuple[str | None, tuple[Any, ...]]]] = {}


def _psycopg3(raw: Any) -> tuple[str | None, tuple[Any, ...]]:
    if raw.closed or raw.broken:
        return "the connection is closed or broken", ()
    pgconn = raw.pgconn
    if pgconn.transaction_status:  # 0 is IDLE; ACTIVE, INTRANS, INERROR, UNKNOWN
        return "a transaction is left open on the connection", ()
    return None, tuple(map(pgconn.parameter_status, _PG_KEYS))


def _psycopg2(raw: Any) -> tuple[str | None, tuple[Any, ...]]:
    if raw.closed:
        return "the connection is closed or broken", ()
    if raw.get_transaction_status():  # 0 is IDLE
        return "a transaction is left open on the connection", ()
    return None, tuple(map(raw.get_parameter_status, PG_REPORTED))


def _sqlite(raw: Any) -> tuple[str | None, tuple[Any, ...]]:
    if raw.in_transaction:
        return "a transaction is left open on the connection", ()
    return None, ()


def _unknown(raw: Any) -> tuple[str | None, tuple[Any, ...]]:
    return None, ()  # other drivers: Django's own transaction flags only


def _probe_for(raw: Any) -> Callable[[Any], tuple[str | None, tuple[Any, ...]]]:
    kind = type(raw)
    probe = _probes.get(kind)
    if probe is None:
        module = kind.__module__
        if module.startswith("psycopg2"):
            probe = _psycopg2
        elif module.startswith("psycopg"):
            probe = _psycopg3
        elif module.startswith("sqlite3"):
            probe = _sqlite
        else:
            probe = _unknown
        _probes[kind] = probe
    return probe


def _remember_session(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On a new connection (after Django set it up): what its session looks like."""
    raw = connection.connection
    if raw is not None:
        try:
            reason, params = _probe_for(raw)(raw)
        except Exception:  # a driver we misread: no snapshot, no session check
            return
        if reason is None:
            setattr(connection, _SESSION, (raw, params))


connection_created.connect(_remember_session, dispatch_uid="middleware_stack.dbstate")


def dirty_reason(conn: Any) -> str | None:
    """Why ``conn`` (a Django connection of this thread) must not serve another request."""
    if conn.in_atomic_block or conn.needs_rollback or conn.closed_in_transaction:
        return "it was left inside transaction.atomic()"
    raw = conn.connection
    if raw is None:
        return None
    if conn.autocommit != conn.settings_dict["AUTOCOMMIT"]:
        return "autocommit was left switched off"
    if conn.execute_wrappers:
        return "an execute_wrapper() was left installed"
    try:
        reason, params = _probe_for(raw)(raw)
    except Exception as exc:
        return f"its state could not be read ({type(exc).__name__})"
    if reason is not None:
        return reason
    if params:
        session = getattr(conn, _SESSION, None)
        if session is not None and session[0] is raw and session[1] != params:
            changed = [n for n, a, b in zip(PG_REPORTED, session[1], params, strict=True) if a != b]
            return f"session settings were changed ({', '.join(changed)})"
    return None


def _reset(conn: Any) -> None:
    raw = conn.connection
    if raw is not None:
        for step in (raw.rollback, raw.close):  # closing also aborts it on the server
            with contextlib.suppress(Exception):
                step()
    # Django's wrapper keeps the atomic-block state even once closed (close() inside an
    # atomic block leaves it "closed in transaction" for good): drop it, and the next
    # request on this thread gets a fresh one, as a new thread would.
    del connections[conn.alias]


def _opened_here() -> list[Any]:
    """The Django connections this (sync) thread has created.

    ``connections.all(initialized_only=True)`` says the same, but each lookup through
    asgiref's ``Local`` costs microseconds (it probes for a running loop); this runs
    after every request, so read the thread-local storage directly when it is the
    plain ``threading.local`` a sync thread uses (asgiref 3.8 to 3.13 alike).
    """
    storage = getattr(getattr(connections, "_connections", None), "_storage", None)
    if type(storage) is not threading.local:
        return list(connections.all(initialized_only=True))
    return [c for c in vars(storage).values() if isinstance(c, BaseDatabaseWrapper)]


def reset_dirty_connections() -> None:
    """Reset every connection of this thread a request left dirty (on the worker)."""
    for conn in _opened_here():
        reason = dirty_reason(conn)
        if reason is not None:
            logger.warning(
                "Database connection %r was reset before its thread's next request: %s.",
                conn.alias,
                reason,
            )
            _reset(conn)
