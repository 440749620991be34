"""The one-hop path sends what Django's ``send_response`` sends, with lowercase header
names, while building the start message itself (middleware_stack.response)."""

from __future__ import annotations

import string
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from middleware_stack import build_stack
from middleware_stack.response import lowercase_headers, start_message
from middleware_stack.types import Message
from tests.asgi import call

NAMES = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
# Values Django keeps as Latin-1, and any others (it MIME-encodes those when set).
VALUES = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t"), max_size=40
)


async def djangos_messages(response: HttpResponse) -> list[Message]:
    """What Django's own send_response sends, through the boundary's lowercasing."""
    handler = object.__new__(ASGIHandler)  # send_response needs no loaded middleware
    sent: list[Message] = []

    async def capture(message: Message) -> None:
        sent.append(message)

    await handler.send_response(response, lowercase_headers(capture))
    return sent


@examples(max_examples=200, deadline=None)
@given(
    headers=st.lists(st.tuples(NAMES, VALUES), max_size=8),
    status=st.sampled_from([200, 201, 204, 301, 404, 418, 500, 599]),
)
async def test_the_start_message_is_djangos_with_lowercase_names(
    headers: list[tuple[str, str]], status: int
) -> None:
    response = HttpResponse(b"body", status=status)
    for name, value in headers:
        response[name] = value
    assert start_message(response) == (await djangos_messages(response))[0]


async def test_a_response_with_cookies_is_left_to_djangos_send_response() -> None:
    """Django encodes a cookie's line differently across versions: not copied here."""
    response = HttpResponse(b"body")
    response.set_cookie("flavour", "oat", httponly=True)
    assert start_message(response) is None


SITE = {"MIDDLEWARE": ["django.contrib.sessions.middleware.SessionMiddleware"]}


async def one_hop_and_djangos_path(path: str, **settings: Any) -> tuple[Any, Any]:
    with override_settings(**SITE, **settings):
        one_hop = build_stack(get_handler(), [], checks="off")
        with override_settings(ASGI_ONE_HOP=False):
            djangos = build_stack(get_handler(), [], checks="off")
    assert "requests one-hop" in one_hop.describe()
    assert "requests Django's path" in djangos.describe()
    return await call(one_hop, path=path), await call(djangos, path=path)


def get_handler() -> ASGIHandler:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()  # type: ignore[return-value]


async def test_the_one_hop_path_sends_the_messages_djangos_path_sends() -> None:
    for path in ("/sync/", "/", "/cookie/", "/json/", "/boom/"):
        one_hop, djangos = await one_hop_and_djangos_path(path)
        assert one_hop.status == djangos.status, path
        assert one_hop.messages == djangos.messages, path
        assert all(k == k.lower() for k, _ in one_hop.headers), path


class SmallChunks(ASGIHandler):
    chunk_size = 3


async def test_a_body_longer_than_the_handlers_chunk_size_goes_in_its_chunks() -> None:
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF="tests.urls"):
        one_hop = build_stack(SmallChunks(), [], checks="off")
        with override_settings(ASGI_ONE_HOP=False):
            djangos = build_stack(SmallChunks(), [], checks="off")
    assert "requests one-hop" in one_hop.describe()
    sent = (await call(one_hop, path="/sync/")).messages
    assert sent == (await call(djangos, path="/sync/")).messages
    bodies = [m["body"] for m in sent[1:]]
    assert len(bodies) > 1 and all(len(b) == 3 for b in bodies[:-1]) and bodies[-1]
    assert [m["more_body"] for m in sent[1:]] == [True] * (len(bodies) - 1) + [False]


class AddsAHeaderWhenSending(ASGIHandler):
    async def send_response(self, response: Any, send: Any) -> None:
        response["X-Sent-By"] = "Subclass"
        await super().send_response(response, send)


async def test_a_handler_that_overrides_send_response_has_it_called_lowercased() -> None:
    with override_settings(MIDDLEWARE=[], ROOT_URLCONF="tests.urls"):
        app = build_stack(AddsAHeaderWhenSending(), [], checks="off")
    assert "requests one-hop" in app.describe()
    response = await call(app, path="/sync/")
    assert response.header("x-sent-by") == "Subclass"
    assert all(k == k.lower() for k, _ in response.headers)
