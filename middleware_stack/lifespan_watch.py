"""Say so when lifespan never reaches the Django boundary because a layer kept it.

Apart from :mod:`middleware_stack.boundary`: it wraps the whole chain of layers once per
lifespan, where the boundary sees only what reaches it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from middleware_stack.boundary import DjangoBoundary

__all__ = ["ANSWER_GRACE", "watch_lifespan"]

logger = logging.getLogger("middleware_stack")


async def watch_lifespan(
    chain: ASGIApp, boundary: DjangoBoundary, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run lifespan through the layers, and say so if it never reached the boundary.

    A layer that answers lifespan itself, or raises on a scope type it does not expect
    (servers then log "lifespan unsupported" and carry on), keeps ``ASGI_LIFESPAN`` from
    running and, for Django, the pooled threads' database connections from being closed
    at shutdown, with nothing else to show for it. Once per lifespan, never per request.

    A layer may also answer startup at once and pass lifespan on afterwards (in a task,
    replaying startup), so a startup answer that went out first is judged a moment
    later (:data:`ANSWER_GRACE`), or when the layers return, whichever comes first.
    Cancellation is the server's doing, never reported.
    """
    seen = boundary.lifespans
    warned = False
    timer: asyncio.TimerHandle | None = None

    def check(what: str) -> None:
        nonlocal warned
        if timer is not None:
            timer.cancel()
        if warned or boundary.lifespans != seen:
            return
        warned = True
        lost = (
            f"ASGI_LIFESPAN ({_describe(boundary.lifespan)}) did not run"
            if boundary.lifespan is not None
            else "the stack's lifespan did not run"
        )
        if boundary.is_django and boundary.pool is not None:
            lost += " and pooled threads will not close their database connections at shutdown"
        _warn_lifespan(
            f"ASGI lifespan never reached the app: a layer in ASGI_MIDDLEWARE {what}, so {lost}."
        )

    async def watched_send(message: Message) -> None:
        nonlocal timer
        if (
            timer is None
            and not warned
            and type(message) is dict
            and message.get("type") == "lifespan.startup.complete"
            and boundary.lifespans == seen
        ):
            answered = "sent lifespan.startup.complete itself"
            timer = asyncio.get_running_loop().call_later(ANSWER_GRACE, check, answered)
        await send(message)

    try:
        await chain(scope, receive, watched_send)
    except Exception as exc:
        check(f"raised {_exception(exc)}")
        raise
    except BaseException:  # cancelled: the server stopped it, no layer is to blame
        if timer is not None:
            timer.cancel()
        raise
    if timer is not None:
        check("sent lifespan.startup.complete itself")
    else:
        check("returned without passing lifespan on")


#: Seconds a layer that answered lifespan startup itself has to pass lifespan on.
ANSWER_GRACE = 1.0


def _exception(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe(value: Any) -> str:
    return getattr(value, "__qualname__", None) or repr(value)


def _warn_lifespan(text: str) -> None:
    import warnings

    from middleware_stack.exceptions import StackWarning

    warning = StackWarning(
        text,
        hint="Pass lifespan scopes on to the inner app in that layer, or give its entry "
        "'scopes': ['http', 'websocket'] so that lifespan goes around it.",
        id="middleware_stack.W005",
    )
    logger.warning("%s", warning)
    warnings.warn(warning, stacklevel=2)
