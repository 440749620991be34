"""Django's HTTP response as the boundary sends it: header names lowercased.

Why lowercase: HTTP/2 and HTTP/3 require lowercase field names, and ASGI servers and
middleware compare them byte for byte (``b"content-type"``); Django's ``send_response``
keeps the case it was given (``Content-Type``).

Why the one-hop path builds its start message itself (:func:`start_message`): Django's
``send_response`` reads a response's headers through ``CaseInsensitiveMapping``'s
generic ``items()`` (a key lookup per header), and the boundary then copies the list
again to lowercase it; together a fifth of the event loop's time per request. The
header store already keys each header by its lowercase name, so one pass gives the
same message. It covers what has one encoding in every supported Django; a response
with cookies (whose line Django encodes differently across versions) goes through
Django's own ``send_response``.
"""

from __future__ import annotations

from typing import Any

from middleware_stack.types import Message, Send

__all__ = ["lowercase_headers", "start_message"]


def lowercase_headers(send: Send) -> Send:
    """``send`` with the header names of ``http.response.start`` lowercased."""

    async def lowercasing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [(k.lower(), v) for k, v in message.get("headers", ())]
        await send(message)

    return lowercasing_send


def _encoded(name: Any, value: Any) -> tuple[bytes, bytes]:
    # As Django's send_response encodes them (names ASCII, values Latin-1).
    if isinstance(name, str):
        name = name.encode("ascii")
    if isinstance(value, str):
        value = value.encode("latin1")
    return bytes(name), bytes(value)


def start_message(response: Any) -> Message | None:
    """The ``http.response.start`` message Django's ``send_response`` sends for
    ``response``, with lowercase header names; None for a response with cookies."""
    if response.cookies:
        return None
    store = getattr(response.headers, "_store", None)  # {lowercase name: (name, value)}
    if isinstance(store, dict):
        headers = [_encoded(lower, value) for lower, (_, value) in store.items()]
    else:  # another mapping: Django's public view of it
        headers = [_encoded(name.lower(), value) for name, value in response.items()]
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}
