"""middleware_stack.test: Django's test clients, with requests that cross the stack."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.test import Client as DjangoClient
from django.test import override_settings
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from middleware_stack import ASGIProtocolError, build_stack
from middleware_stack.test import AsyncClient, Client, Websocket, WebsocketClosed
from middleware_stack.test import application as test_application

MARKS = "tests.client_site.layers.Marks"
SITE = {
    "ROOT_URLCONF": "tests.client_site.urls",
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": ["tests/client_site/templates"],
        }
    ],
    "ASGI_MIDDLEWARE": [(MARKS, {"mark": "outer"}), "tests.client_site.layers.Teapot"],
}


@pytest.fixture(autouse=True)
def site() -> Any:
    with override_settings(**SITE):
        yield


# -- requests cross the stack ------------------------------------------------------------


def test_sync_client_request_passes_through_the_layers() -> None:
    response = Client().get("/scope/?a=1&b=%C3%A9", HTTP_X_EXTRA="yes")
    assert response.status_code == 200
    assert response["X-Layer"] == "outer"  # a header a layer added, case-insensitive
    data = response.json()
    assert data["marks"] == ["outer"]
    assert data["method"] == "GET"
    assert data["query_string"] == "a=1&b=%C3%A9"
    assert data["GET"] == {"a": "1", "b": "é"}
    assert ["x-extra", "yes"] in data["headers"]
    assert ["host", "testserver"] in data["headers"]
    assert data["client"] == ["127.0.0.1", 0]
    assert not any(name == "cookie" for name, _ in data["headers"])  # none to send


async def test_async_client_request_passes_through_the_layers() -> None:
    response = await AsyncClient().get("/scope/", {"q": "x"}, headers={"X-Extra": "yes"})
    assert response.status_code == 200
    assert response["x-layer"] == "outer"
    data = response.json()
    assert data["marks"] == ["outer"]
    assert data["query_string"] == "q=x"
    assert ["x-extra", "yes"] in data["headers"]


def test_scope_carries_client_root_path_body_and_utf8_path() -> None:
    response = Client().post(
        "/scope/",
        data=b"raw body",
        content_type="application/octet-stream",
        REMOTE_ADDR="203.0.113.7",
        SCRIPT_NAME="/mount",
    )
    data = response.json()
    assert data["client"] == ["203.0.113.7", 0]
    assert data["root_path"] == "/mount"
    assert data["path"] == "/mount/scope/"
    assert data["path_info"] == "/scope/"
    assert data["request_path"] == "/mount/scope/"
    assert data["body"] == "raw body"
    assert ["content-length", "8"] in data["headers"]


async def test_async_client_takes_wsgi_names_for_client_and_root_path() -> None:
    response = await AsyncClient().get("/scope/", REMOTE_ADDR="198.51.100.4", SCRIPT_NAME="/m")
    data = response.json()
    assert data["client"] == ["198.51.100.4", 0]
    assert data["root_path"] == "/m"
    assert data["path_info"] == "/scope/"
    assert not any(name in ("remote-addr", "script-name") for name, _ in data["headers"])


def test_non_ascii_path_is_utf8_in_path_and_percent_encoded_in_raw_path() -> None:
    response = Client().get("/scope/café")
    assert response.status_code == 404  # no such route; the layer still saw it
    assert response["x-layer"] == "outer"


URL_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="?#%"), max_size=12
)


@examples(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=URL_TEXT, key=URL_TEXT, value=URL_TEXT)
def test_django_sees_the_request_as_with_djangos_own_client(
    path: str, key: str, value: str
) -> None:
    # The scope the client makes must give Django the request its own client gives it:
    # the same path (non-ASCII included) and the same query parameters.
    url = "/" + path
    assume(not url.endswith("/teapot"))
    ours = Client().get(url, {key: value}).wsgi_request
    theirs = DjangoClient().get(url, {key: value}).wsgi_request
    assert ours.path_info == theirs.path_info
    assert ours.path == theirs.path
    assert list(ours.GET.lists()) == list(theirs.GET.lists())


QUERY_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="?#%&=", min_codepoint=32
    ),
    max_size=12,
)


@examples(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=QUERY_TEXT, value=QUERY_TEXT)
def test_a_query_written_in_the_url_reaches_django_as_with_djangos_own_client(
    key: str, value: str
) -> None:
    # Django's client puts a URL's query in the environ as WSGI does, UTF-8 bytes held as
    # latin-1 text; the scope must carry those bytes, not encode the text again
    # (Django's own test_client.tests.ClientTest.test_query_string_encoding, "1\ufffd").
    url = f"/no-such-page/?{key}={value}"  # a 404 for both: the request is what counts
    ours = Client().get(url).wsgi_request
    theirs = DjangoClient().get(url).wsgi_request
    assert list(ours.GET.lists()) == list(theirs.GET.lists())


@pytest.mark.parametrize("client", [Client, AsyncClient])
async def test_a_non_ascii_query_in_the_url_is_read_back_as_written(client: Any) -> None:
    if client is Client:
        from asgiref.sync import sync_to_async

        response = await sync_to_async(Client().get)("/scope/?var=1\ufffd&b=é")
    else:
        response = await AsyncClient().get("/scope/?var=1\ufffd&b=é")
    assert response.json()["GET"] == {"var": "1\ufffd", "b": "é"}
    assert response.json()["query_string"] == "var=1%EF%BF%BD&b=%C3%A9"


def test_a_layer_answering_alone_gives_a_plain_response_with_its_headers() -> None:
    response = Client().get("/teapot")
    assert response.status_code == 418
    assert response.content == b"short and stout"
    assert response["Vary"] == "Origin, Cookie"  # two lines, folded as HTTP does
    assert response.cookies["pot"].value == "1"
    assert response.wsgi_request is None  # Django never saw it


# -- the response Django's client gives ---------------------------------------------------


def test_templates_and_context_are_collected() -> None:
    response = Client().get("/page/", {"name": "Ada"})
    assert [t.name for t in response.templates] == ["page.html"]
    assert response.context["name"] == "Ada"
    assert b"Hello Ada" in response.content
    assert response.resolver_match.url_name == "page"


async def test_async_client_collects_templates_too() -> None:
    response = await AsyncClient().get("/template-response/")
    assert response.context_data == {"name": "lazy"}  # the view's own response class
    assert [t.name for t in response.templates] == ["page.html"]


def test_wsgi_request_is_the_request_django_built() -> None:
    response = Client().get("/scope/?k=v")
    assert response.wsgi_request.GET["k"] == "v"
    assert response.asgi_request is response.wsgi_request
    assert response.wsgi_request.scope["marks"] == ["outer"]


def test_follow_collects_the_redirect_chain() -> None:
    response = Client().get("/go/", follow=True)
    assert response.redirect_chain == [("/page/?name=redirected", 302)]
    assert b"Hello redirected" in response.content
    assert response["x-layer"] == "outer"


async def test_async_follow_collects_the_redirect_chain() -> None:
    response = await AsyncClient().get("/go/", follow=True)
    assert response.redirect_chain == [("/page/?name=redirected", 302)]
    assert response.context["name"] == "redirected"


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous")
def test_streaming_content_arrives_in_its_chunks() -> None:
    response = Client().get("/sync-stream/")
    assert response.streaming
    assert list(response.streaming_content) == [b"a;", b"b;", b"c;"]


async def test_async_streaming_content_is_an_async_iterator() -> None:
    response = await AsyncClient().get("/async-stream/")
    assert response.streaming and response.is_async
    assert [chunk async for chunk in response.streaming_content] == [b"x;", b"y;"]


def test_head_response_has_no_body() -> None:
    response = Client().head("/page/")
    assert response.status_code == 200
    assert response.content == b""


def test_post_json_and_json_response() -> None:
    response = Client().post("/post-json/", {"a": [1, 2]}, content_type="application/json")
    assert response.json() == {"got": {"a": [1, 2]}, "type": "application/json"}


def test_view_exception_is_raised_like_djangos_client() -> None:
    with pytest.raises(RuntimeError, match="boom from the view"):
        Client().get("/boom/")


def test_view_exception_gives_the_500_when_not_raised() -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert response["x-layer"] == "outer"  # the 500 crossed the layers
    assert response.exc_info[0] is RuntimeError


def test_djangos_response_assertions_work() -> None:
    from pytest_django.asserts import assertContains, assertRedirects, assertTemplateUsed

    client = Client()
    assertRedirects(client.get("/go/"), "/page/?name=redirected")
    response = client.get("/page/", {"name": "Ada"})
    assertContains(response, "Hello Ada")
    assertTemplateUsed(response, "page.html")


def test_exception_escaping_the_stack_is_raised_or_answered_500() -> None:
    with override_settings(ASGI_MIDDLEWARE=["tests.layers.RaisesInRequest"]):
        with pytest.raises(KeyError, match="raised by the layer"):
            Client().get("/scope/")
        response = Client(raise_request_exception=False).get("/scope/")
    assert response.status_code == 500
    assert response.exc_info[0] is KeyError


# -- sessions, login, cookies, CSRF --------------------------------------------------------


@pytest.mark.django_db
def test_force_login_and_logout() -> None:
    client = Client()
    client.force_login(User.objects.create(username="ada"))
    assert client.get("/whoami/").json() == {"user": "ada"}
    client.logout()
    assert client.get("/whoami/").json() == {"user": None}


@pytest.mark.django_db
def test_login_with_credentials() -> None:
    User.objects.create_user(username="bob", password="pw-for-tests")
    client = Client()
    assert client.login(username="bob", password="pw-for-tests")
    assert client.get("/whoami/").json() == {"user": "bob"}


@pytest.mark.django_db(transaction=True)  # async: the ORM runs on another thread
async def test_async_force_login() -> None:
    client = AsyncClient()
    user = await User.objects.acreate(username="eve")
    await client.aforce_login(user)
    assert (await client.get("/whoami/")).json() == {"user": "eve"}


@pytest.mark.django_db
def test_session_persists_through_cookies() -> None:
    client = Client()
    client.get("/session/set/", {"colour": "green"})
    assert client.get("/session/get/").json() == {"colour": "green"}
    assert client.session["colour"] == "green"


def test_cookies_set_by_a_layer_are_kept_and_sent_back() -> None:
    client = Client()
    client.get("/teapot")
    assert client.cookies["pot"].value == "1"
    headers = dict(client.get("/scope/").json()["headers"])
    assert headers["cookie"] == "pot=1"


def test_csrf_is_skipped_unless_enforced() -> None:
    assert Client().post("/protected/").status_code == 200
    assert Client(enforce_csrf_checks=True).post("/protected/").status_code == 403


def test_each_client_loads_middleware_afresh_like_djangos_client() -> None:
    # Django's CsrfViewMiddleware keeps CSRF_TRUSTED_ORIGINS in its instance; a handler
    # shared by every client would keep the first test's value.
    csrf = "django.middleware.csrf.CsrfViewMiddleware"
    origin = "https://trusted.example.com"
    statuses = []
    for trusted in ([], [origin], []):
        with override_settings(MIDDLEWARE=[csrf], CSRF_TRUSTED_ORIGINS=trusted):
            client = Client(enforce_csrf_checks=True)
            client.get("/csrf-token/")
            token = client.cookies["csrftoken"].value
            response = client.post(
                "/unprotected/", headers={"Origin": origin, "X-CSRFToken": token}
            )
            statuses.append(response.status_code)
    assert statuses == [403, 200, 403]


# -- which application ----------------------------------------------------------------------


def test_asgi_application_setting_is_the_application() -> None:
    with override_settings(ASGI_APPLICATION="tests.client_site.asgi.application"):
        response = Client().get("/scope/")
    assert response.json()["marks"] == ["from-asgi-py"]


def test_bare_django_as_asgi_application_is_served_without_layers() -> None:
    with override_settings(ASGI_APPLICATION="tests.client_site.asgi.bare"):
        response = Client().get("/scope/")
    assert response.status_code == 200
    assert response.json()["marks"] == []  # ASGI_MIDDLEWARE is not what is deployed
    assert "x-layer" not in response


def test_application_argument_names_another() -> None:
    from tests.client_site import asgi

    assert Client(application=asgi.application).get("/scope/").json()["marks"] == ["from-asgi-py"]
    assert Client(application="tests.client_site.asgi.application").get("/scope/")["x-layer"] == (
        "from-asgi-py"
    )


def test_a_plain_asgi_app_is_called_as_it_is() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    response = Client(application=app).get("/")
    assert (response.status_code, response.content) == (201, b"raw")


def test_header_lines_differing_only_in_case_are_folded_into_one() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"Vary", b"Cookie"), (b"vary", b"Origin"), (b"X-One", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    response = Client(application=app).get("/")
    assert response["vary"] == "Cookie, Origin"
    assert response["x-one"] == "1"


# -- settings changes rebuild the stack -----------------------------------------------------


def test_override_of_asgi_middleware_takes_effect() -> None:
    client = Client()
    assert client.get("/scope/")["x-layer"] == "outer"
    with override_settings(ASGI_MIDDLEWARE=[(MARKS, {"mark": "other"})]):
        assert client.get("/scope/")["x-layer"] == "other"
    assert client.get("/scope/")["x-layer"] == "outer"


def test_override_of_a_setting_a_layer_reads_takes_effect() -> None:
    with override_settings(ASGI_MIDDLEWARE=[MARKS], ASGI_TEST_REBUILD_SETTINGS=["MARK_LAYER_"]):
        client = Client()
        assert client.get("/scope/")["x-layer"] == "m"
        with override_settings(MARK_LAYER_VALUE="read-at-build"):
            assert client.get("/scope/")["x-layer"] == "read-at-build"


def test_pytest_django_settings_fixture_takes_effect(settings: Any) -> None:
    client = Client()
    assert client.get("/scope/")["x-layer"] == "outer"
    settings.ASGI_MIDDLEWARE = [(MARKS, {"mark": "fixture"})]
    assert client.get("/scope/")["x-layer"] == "fixture"


def test_rebuilds_are_cached_per_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Any] = []
    real = test_application._build
    monkeypatch.setattr(test_application, "_build", lambda *a: builds.append(a) or real(*a))
    client = Client()
    for _ in range(3):
        client.get("/scope/")
        with override_settings(ASGI_MIDDLEWARE=[(MARKS, {"mark": "cached"})]):
            assert client.get("/scope/")["x-layer"] == "cached"
            Client().get("/scope/")
    assert len(builds) <= 2  # one per configuration, however many requests and clients


def test_a_malformed_rebuild_setting_names_itself() -> None:
    from middleware_stack import StackConfigurationError

    with (
        override_settings(ASGI_TEST_REBUILD_SETTINGS="MYLAYER_"),
        pytest.raises(StackConfigurationError, match="ASGI_TEST_REBUILD_SETTINGS"),
    ):
        Client().get("/scope/")


def test_unrelated_setting_changes_do_not_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client()
    client.get("/scope/")
    built = client.stack
    with override_settings(USE_I18N=False):
        client.get("/scope/")
        assert client.stack is built


# -- runtime checks and threads ---------------------------------------------------------------


def test_runtime_checks_are_strict_under_the_client() -> None:
    with override_settings(
        ASGI_MIDDLEWARE=["tests.client_site.layers.SendsBodyTwiceAfterTheEnd"],
        ASGI_MIDDLEWARE_CHECKS="off",
    ):
        with pytest.raises(ASGIProtocolError, match="SendsBodyTwiceAfterTheEnd"):
            Client().get("/scope/")
        assert Client(checks="off").get("/scope/").status_code == 200


@pytest.mark.django_db
def test_sync_work_runs_on_the_tests_thread() -> None:
    response = Client().get("/users/")
    assert response.json()["thread"] == threading.get_ident()


@pytest.mark.django_db(transaction=True)
async def test_in_a_pytest_asyncio_test_sync_work_shares_the_tests_sync_thread() -> None:
    from asgiref.sync import sync_to_async

    response = await AsyncClient().get("/users/")
    assert response.json()["thread"] == await sync_to_async(threading.get_ident)()


def test_thread_reuse_is_off_in_the_clients_stack() -> None:
    with override_settings(ASGI_THREAD_REUSE=True):
        stack = Client().stack
    assert stack.boundary.pool is None  # type: ignore[attr-defined]


def test_production_stack_keeps_its_settings_when_settings_change() -> None:
    stack = build_stack(get_asgi_application(), [(MARKS, {})], checks="off")
    with override_settings(MARK_LAYER_VALUE="changed"):
        assert stack.instances[0].mark == "m"  # read once, when built


# -- websocket --------------------------------------------------------------------------------


WS = {"ASGI_WEBSOCKET_APPLICATION": "tests.client_site.layers.echo_websocket"}


async def test_websocket_connects_through_the_layers() -> None:
    with override_settings(**WS):
        ws = Websocket("/ws/")
        assert await ws.connect() == (True, None)
        await ws.send_json("hi")
        reply = await ws.receive_json()
        assert reply["marks"] == ["outer"]
        await ws.close()


async def test_websocket_close_from_the_app_is_reported() -> None:
    with override_settings(**WS):
        ws = Websocket("/ws/")
        await ws.connect()
        await ws.send_text("close")
        with pytest.raises(WebsocketClosed) as caught:
            await ws.receive()
        assert caught.value.code == 4000


async def test_websocket_without_an_application_is_refused() -> None:
    ws = Websocket("/ws/")
    assert await ws.connect() == (False, 1000)


@pytest.mark.django_db(transaction=True)  # async: the ORM runs on another thread
async def test_websocket_from_a_client_carries_its_session_cookie() -> None:
    with override_settings(**WS):
        client = AsyncClient()
        await client.aforce_login(await User.objects.acreate(username="wsuser"))
        async with client.websocket("/ws/") as ws:
            await ws.send_json("x")
            assert "sessionid=" in (await ws.receive_json())["cookie"]


async def test_stack_websocket_fixture(stack_websocket: Any) -> None:
    with override_settings(**WS):
        ws = stack_websocket("/ws/")
        assert (await ws.connect())[0]
        await ws.send_json("fixture")
        assert (await ws.receive_json())["echo"] == '"fixture"'


async def test_sync_client_in_an_async_test_says_to_use_the_async_client() -> None:
    with pytest.raises(RuntimeError, match="AsyncClient"):
        Client().get("/scope/")


def test_stack_client_fixture(stack_client: Client) -> None:
    assert stack_client.get("/scope/")["x-layer"] == "outer"


async def test_async_stack_client_fixture(async_stack_client: AsyncClient) -> None:
    assert (await async_stack_client.get("/scope/"))["x-layer"] == "outer"
