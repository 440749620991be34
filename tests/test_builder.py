"""build_stack: entry forms, composition, and every build-time check."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware

from middleware_stack import (
    Layer,
    Stack,
    StackConfigurationError,
    StackWarning,
    build_stack,
    threads,
)
from middleware_stack.builder import ScopeFilter
from middleware_stack.types import Receive, Scope, Send
from tests import layers
from tests.asgi import answer_lifespan, call, lifespan


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def build(entries: list[Any], **kwargs: Any) -> Stack:
    kwargs.setdefault("checks", "off")
    return build_stack(hello_app, entries, **kwargs)


def error_of(entries: list[Any], **kwargs: Any) -> StackConfigurationError:
    with pytest.raises(StackConfigurationError) as info:
        build(entries, **kwargs)
    return info.value


# -- entry forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "tests.layers.Tag",
        ("tests.layers.Tag", {"name": "tag"}),
        (layers.Tag, {"name": "tag"}),
        {"middleware": "tests.layers.Tag", "options": {"name": "tag"}},
        {"middleware": layers.Tag},
        Layer("tests.layers.Tag", {"name": "tag"}),
        Layer(layers.Tag),
        Middleware(layers.Tag, name="tag"),
        layers.Tag,
    ],
    ids=[
        "str",
        "tuple",
        "tuple-object",
        "dict",
        "dict-object",
        "layer",
        "layer-obj",
        "starlette",
        "obj",
    ],
)
async def test_every_entry_form_builds_the_same_layer(entry: Any) -> None:
    stack = build([entry])
    assert [layer.path for layer in stack.layers] == ["tests.layers.Tag"]
    assert stack.layers[0].factory is layers.Tag
    response = await call(stack)
    assert response.header_all("x-trail") == ["tag"]


async def test_plain_function_factory_receives_options() -> None:
    stack = build([("tests.layers.tag_factory", {"name": "fn"})])
    assert (await call(stack)).header("x-trail") == "fn"


async def test_first_entry_is_outermost() -> None:
    stack = build(
        [
            {"middleware": "tests.layers.Tag", "options": {"name": "a"}, "name": "a"},
            {"middleware": "tests.layers.Tag", "options": {"name": "b"}, "name": "b"},
        ]
    )
    response = await call(stack)
    # b is inside a: b adds its header first on the way out.
    assert response.header_all("x-trail") == ["b", "a"]
    assert [layer.options["name"] for layer in stack.layers] == ["a", "b"]


def test_stack_exposes_layers_app_and_describe() -> None:
    stack = build(
        [
            {
                "middleware": "tests.layers.Tag",
                "options": {"name": "x"},
                "scopes": ["http"],
                "name": "t",
            }
        ]
    )
    (layer,) = stack.layers
    assert (layer.name, layer.path, layer.options, layer.scopes) == (
        "t",
        "tests.layers.Tag",
        {"name": "x"},
        frozenset({"http"}),
    )
    assert stack.app is hello_app
    text = stack.describe()
    assert "tests.layers.Tag" in text and "name='x'" in text and "http" in text
    assert text.index("tests.layers.Tag") < text.index("hello_app")


def test_disabled_entries_are_left_out() -> None:
    stack = build(
        [{"middleware": "tests.layers.Tag", "enabled": False}, ("tests.layers.Tag", {"name": "on"})]
    )
    assert [layer.options.get("name") for layer in stack.layers] == ["on"]
    assert stack.layers[0].index == 1


def test_disabled_entries_are_still_validated() -> None:
    err = error_of([{"middleware": "tests.layers.Nope", "enabled": False}])
    assert "ASGI_MIDDLEWARE[0]" in str(err)


@override_settings(ASGI_MIDDLEWARE=[("tests.layers.Tag", {"name": "from-settings"})])
async def test_middleware_none_reads_the_setting() -> None:
    stack = build_stack(hello_app, checks="off")
    assert (await call(stack)).header("x-trail") == "from-settings"


@override_settings()
def test_missing_setting_means_empty_stack() -> None:
    from django.conf import settings

    del settings.ASGI_MIDDLEWARE
    assert build_stack(hello_app, checks="off").layers == ()


# -- scopes ------------------------------------------------------------------------------


async def test_layer_limited_to_http_never_sees_lifespan() -> None:
    layers.SeesScopes.seen = []
    stack = build([{"middleware": "tests.layers.SeesScopes", "scopes": ["http"]}])
    await lifespan(stack)
    await call(stack)
    assert layers.SeesScopes.seen == ["http"]


async def test_layer_without_scopes_sees_every_scope_type() -> None:
    layers.SeesScopes.seen = []
    stack = build(["tests.layers.SeesScopes"])
    await lifespan(stack)
    await call(stack)
    assert layers.SeesScopes.seen == ["lifespan", "http"]


def test_scopes_filter_is_only_inserted_when_needed() -> None:
    unfiltered = build(["tests.layers.SeesScopes"])
    assert isinstance(unfiltered._chain, layers.SeesScopes)
    filtered = build([{"middleware": "tests.layers.SeesScopes", "scopes": ["http"]}])
    assert isinstance(filtered._chain, ScopeFilter)


@pytest.mark.parametrize(
    "scopes",
    [["htp"], [], "http", b"http", ["http", 3], [["http"]], ["http", None], [{"http"}], 5],
)
@pytest.mark.parametrize("form", ["dict", "Layer"])
def test_bad_scopes_are_refused(scopes: Any, form: str) -> None:
    entry: Any = (
        {"middleware": "tests.layers.Tag", "scopes": scopes}
        if form == "dict"
        else Layer("tests.layers.Tag", scopes=scopes)
    )
    err = error_of([entry])
    assert err.id == "middleware_stack.E007"
    assert "ASGI_MIDDLEWARE[0]" in str(err) and "'tests.layers.Tag'" in str(err)
    assert "http" in (err.hint or "")


def test_scope_types_that_are_not_strings_are_named_in_the_error() -> None:
    scopes: Any = ["http", 1, None]
    err = error_of([Layer("tests.layers.Tag", scopes=scopes)])
    assert "scope type(s) [1, None] that are not strings" in str(err)
    err = error_of([{"middleware": "tests.layers.Tag", "scopes": [["http"]]}])
    assert "[['http']] that are not strings" in str(err)
    assert "Did you mean 'http'?" in (err.hint or "")


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (Layer("tests.layers.Tag", name=5), "'name' must be a non-empty string, not 5"),  # type: ignore[arg-type]
        (Layer("tests.layers.Tag", name=""), "'name' must be a non-empty string, not ''"),
        (Layer("tests.layers.Tag", ignore_order="yes"), "'ignore_order' must be True or False"),  # type: ignore[arg-type]
    ],
)
def test_layer_with_a_bad_name_or_flag_is_refused_with_its_position(
    entry: Layer, needle: str
) -> None:
    err = error_of(["tests.layers.Tag", entry])
    assert err.id == "middleware_stack.E001"
    assert str(err).startswith("ASGI_MIDDLEWARE[1] ('tests.layers.Tag'):")
    assert needle in str(err)
    assert err.hint


def test_unknown_scope_type_suggests_the_close_one() -> None:
    err = error_of([{"middleware": "tests.layers.Tag", "scopes": ["websockets"]}])
    assert "Did you mean 'websocket'" in (err.hint or "")


# -- import and entry errors -------------------------------------------------------------


def test_errors_are_improperly_configured() -> None:
    assert issubclass(StackConfigurationError, ImproperlyConfigured)


def test_missing_module_names_the_entry_and_the_module() -> None:
    err = error_of(["tests.layers.Tag", "nopkg.middleware.Thing"])
    text = str(err)
    assert text.startswith("ASGI_MIDDLEWARE[1] ('nopkg.middleware.Thing'):")
    assert "no module named 'nopkg'" in text and "installed" in text
    assert err.id == "middleware_stack.E002"


def test_missing_attribute_suggests_a_close_name() -> None:
    err = error_of(["tests.layers.Tagg"])
    assert "has no attribute 'Tagg'" in str(err)
    assert "Did you mean tests.layers.'Tag'" in str(err)


def test_module_that_raises_on_import_is_reported_with_the_cause() -> None:
    err = error_of(["tests.broken_import.Thing"])
    assert "RuntimeError: this module is broken on purpose" in str(err)
    assert isinstance(err.__cause__, RuntimeError)


def test_not_a_dotted_path() -> None:
    err = error_of(["Tag"])
    assert "not a dotted path" in str(err)


def test_non_callable_target_is_refused() -> None:
    err = error_of(["tests.layers.NOT_CALLABLE"])
    assert err.id == "middleware_stack.E005" and "not a middleware factory" in str(err)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (42, "got int 42"),
        (("tests.layers.Tag",), "must be (factory, options); got 1 item"),
        (("tests.layers.Tag", {}, {}), "got 3 item"),
        (("tests.layers.Tag", ["name"]), "options of a tuple entry must be a dict"),
        ({"middleware": "tests.layers.Tag", "option": {}}, "Did you mean 'options'"),
        ({"options": {}}, "needs a 'middleware' key"),
        ({"middleware": "tests.layers.Tag", "enabled": "yes"}, "'enabled' must be True or False"),
        ({"middleware": "tests.layers.Tag", "name": ""}, "'name' must be a non-empty string"),
        ({"middleware": "tests.layers.Tag", "options": "x"}, "'options' must be a dict"),
        (Middleware(layers.Tag, "positional"), "positional arguments"),
    ],
)
def test_malformed_entries_get_a_clear_error(entry: Any, needle: str) -> None:
    err = error_of(["tests.layers.Tag", entry])
    assert "ASGI_MIDDLEWARE[1]" in str(err)
    assert needle in str(err)
    assert err.hint


def test_setting_that_is_not_a_list_is_refused() -> None:
    err = error_of("tests.layers.Tag")  # type: ignore[arg-type]
    assert "must be a list" in str(err)


@pytest.mark.parametrize(
    "entries",
    [
        {"tests.layers.NeedsOption": {"required": "x"}},
        {"tests.layers.Tag", "tests.layers.SeesScopes"},
        frozenset({"tests.layers.Tag"}),
    ],
    ids=["dict", "set", "frozenset"],
)
@pytest.mark.parametrize("source", ["argument", "setting"])
def test_middleware_given_as_a_dict_or_a_set_is_refused(entries: Any, source: str) -> None:
    # A dict would be iterated as its keys, silently dropping the options; a set has no
    # order, and the order is what the setting says.
    with pytest.raises(StackConfigurationError) as info:
        if source == "argument":
            build(entries)
        else:
            with override_settings(ASGI_MIDDLEWARE=entries):
                build_stack(hello_app, checks="off")
    err = info.value
    assert err.id == "middleware_stack.E001"
    assert f"ASGI_MIDDLEWARE must be a list of entries, not a {type(entries).__name__}" in str(err)
    assert "first entry the outermost layer" in str(err)


# -- options -----------------------------------------------------------------------------


def test_unknown_option_lists_the_accepted_ones() -> None:
    err = error_of([("tests.layers.NeedsOption", {"required": "x", "optinal": 2})])
    assert err.id == "middleware_stack.E003"
    assert "'optinal'" in str(err)
    assert "Did you mean 'optional'" in str(err)
    assert "required, optional" in str(err)


def test_missing_required_option_is_named() -> None:
    err = error_of(["tests.layers.NeedsOption"])
    assert err.id == "middleware_stack.E004" and "'required'" in str(err)


def test_starlette_middleware_options_are_checked_too() -> None:
    err = error_of([Middleware(GZipMiddleware, minimum_sise=10)])
    assert "Did you mean 'minimum_size'" in str(err)


def test_factory_that_raises_is_a_configuration_error() -> None:
    err = error_of(["tests.layers.Explodes"])
    assert err.id == "middleware_stack.E009"
    assert "ValueError: cannot start: missing API key" in str(err)
    assert isinstance(err.__cause__, ValueError)


# -- what a factory returns --------------------------------------------------------------


def test_factory_returning_none_is_refused() -> None:
    err = error_of(["tests.layers.returns_none"])
    assert err.id == "middleware_stack.E005" and "returned None" in str(err)


def test_sync_call_is_refused_as_not_async() -> None:
    err = error_of(["tests.layers.SyncCall"])
    assert err.id == "middleware_stack.E006"
    assert "'async def'" in str(err) and "markcoroutinefunction" in (err.hint or "")


async def test_sync_call_marked_as_coroutine_function_is_accepted() -> None:
    stack = build(["tests.layers.SyncCallMarked"])
    assert (await call(stack)).body == b"hi"


async def test_asgi2_instance_is_adapted_with_a_warning() -> None:
    with pytest.warns(StackWarning, match="ASGI 2 double-callable") as record:
        stack = build(["tests.layers.ASGI2Instance"])
    assert record[0].message.id == "middleware_stack.W001"  # type: ignore[union-attr]
    assert (await call(stack)).body == b"hi"


async def test_asgi2_class_is_adapted_with_a_warning() -> None:
    with pytest.warns(StackWarning, match="ASGI 2 class"):
        stack = build(["tests.layers.asgi2_class_factory"])
    assert (await call(stack)).body == b"hi"


def test_async_class_instance_is_not_mistaken_for_asgi2() -> None:
    # asgiref's is_double_callable() calls every class ASGI 2; we decide from the instance.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(["tests.layers.Tag", GZipMiddleware])


class NoopBase(BaseHTTPMiddleware):
    async def dispatch(self, request: Any, call_next: Any) -> Any:
        return await call_next(request)


async def test_base_http_middleware_is_allowed_with_a_warning_on_its_cost() -> None:
    with pytest.warns(StackWarning, match="BaseHTTPMiddleware") as record:
        stack = build([NoopBase])
    message = str(record[0].message)
    assert "contextvars" in message and "pure ASGI" in message
    assert (await call(stack)).body == b"hi"


# -- duplicates and order ----------------------------------------------------------------


def test_duplicate_layer_is_warned() -> None:
    with pytest.warns(StackWarning, match="listed twice") as record:
        build(["tests.layers.Tag", "tests.layers.Tag"])
    w = record[0].message
    assert w.index == 1 and w.id == "middleware_stack.W003"  # type: ignore[union-attr]
    assert "ASGI_MIDDLEWARE[1]" in str(w) and "ASGI_MIDDLEWARE[0]" in str(w)


def test_same_factory_with_distinct_names_is_not_a_duplicate() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(
            [
                {"middleware": "tests.layers.Tag", "name": "one"},
                {"middleware": "tests.layers.Tag", "name": "two"},
            ]
        )


def test_outermost_constraint_warns_when_not_first() -> None:
    with pytest.warns(StackWarning, match="wants to be the outermost") as record:
        build(["tests.layers.Tag", "tests.layers.Outer"])
    assert record[0].message.id == "middleware_stack.W004"  # type: ignore[union-attr]


def test_innermost_constraint_warns_when_not_last() -> None:
    with pytest.warns(StackWarning, match=r"wants to be the innermost layer \(listed last\)"):
        build(["tests.layers.Inner", "tests.layers.Tag"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(["tests.layers.Tag", "tests.layers.Inner"])


def test_outermost_warning_is_silenced_by_ignore_order() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(["tests.layers.Tag", {"middleware": "tests.layers.Outer", "ignore_order": True}])


def test_outside_constraint_is_an_error_when_violated() -> None:
    err = error_of(["tests.layers.Tag", "tests.layers.MustWrapTag"])
    assert err.id == "middleware_stack.E008"
    assert "must sit outside Tag (ASGI_MIDDLEWARE[0])" in str(err)
    assert "Move it above ASGI_MIDDLEWARE[0]" in (err.hint or "")


def test_outside_constraint_holds_when_respected() -> None:
    build(["tests.layers.MustWrapTag", "tests.layers.Tag"])


def test_inside_constraint_is_an_error_when_violated() -> None:
    err = error_of(["tests.layers.MustBeInsideTag", "tests.layers.Tag"])
    assert "must sit inside Tag" in str(err)


def test_unique_constraint_refuses_a_second_copy() -> None:
    err = error_of(
        ["tests.layers.MustWrapTag", {"middleware": "tests.layers.MustWrapTag", "name": "b"}]
    )
    assert err.id == "middleware_stack.E011"


@pytest.mark.parametrize(
    "layer", ["BadConstraints", "ConstraintAsAString", "ConstraintFlagNotABool"]
)
def test_invalid_constraint_declaration_is_reported(layer: str) -> None:
    # A malformed declaration would otherwise switch the order rule off silently.
    err = error_of([f"tests.layers.{layer}", "tests.layers.Tag"])
    assert "invalid stack_constraints" in str(err)
    assert err.id == "middleware_stack.E008"


# -- settings -----------------------------------------------------------------------------


def test_bad_checks_mode_is_refused() -> None:
    err = error_of([], checks="loud")
    assert "ASGI_MIDDLEWARE_CHECKS = 'loud'" in str(err) and "'warn'" in (err.hint or "")


@override_settings(DEBUG=True)
def test_checks_default_to_warn_in_debug() -> None:
    from django.conf import settings

    del settings.ASGI_MIDDLEWARE_CHECKS
    assert build_stack(hello_app, []).checks == "warn"


@override_settings(DEBUG=False)
def test_checks_default_to_off_without_debug() -> None:
    from django.conf import settings

    del settings.ASGI_MIDDLEWARE_CHECKS
    assert build_stack(hello_app, []).checks == "off"


def test_bad_lifespan_path_names_the_setting() -> None:
    err = error_of([], lifespan="tests.layers.nothing_here")
    assert "ASGI_LIFESPAN = 'tests.layers.nothing_here'" in str(err)


def test_sync_websocket_application_is_refused() -> None:
    def ws(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    err = error_of([], websocket=ws)
    assert "ASGI_WEBSOCKET_APPLICATION" in str(err) and err.id == "middleware_stack.E006"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASGI_THREAD_REUSE", "yes"),
        ("ASGI_THREAD_POOL_IDLE", -1),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", -1),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", "5"),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", float("nan")),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", float("inf")),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", True),
        ("ASGI_THREAD_POOL_IDLE_TIMEOUT", 10**400),
        ("ASGI_THREAD_POOL_IDLE", True),
        ("ASGI_THREAD_POOL_IDLE", 2.0),
        ("ASGI_THREAD_POOL_IDLE", -(10**400)),
        ("ASGI_THREAD_POOL_MAX", 0),
        ("ASGI_THREAD_POOL_MAX", -3),
        ("ASGI_THREAD_POOL_MAX", True),
        ("ASGI_THREAD_POOL_MAX", 8.0),
        ("ASGI_THREAD_POOL_MAX", "40"),
        ("ASGI_THREAD_POOL_MAX", None),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v)[:20],
)
def test_bad_thread_settings_are_refused(name: str, value: Any) -> None:
    with (
        override_settings(**{name: value}),
        pytest.raises(StackConfigurationError, match=name) as info,
    ):
        build([])
    assert info.value.id == "middleware_stack.E010"


def test_thread_pool_timeout_too_large_for_a_float_is_an_e010_error_not_overflow() -> None:
    # 10**5000 also has too many digits for repr(): the message must still be built.
    for value in (10**400, 10**5000):
        with override_settings(ASGI_THREAD_POOL_IDLE_TIMEOUT=value):
            err = error_of([])
        assert err.id == "middleware_stack.E010"
        assert "ASGI_THREAD_POOL_IDLE_TIMEOUT" in str(err) and "seconds >= 0" in str(err)


@pytest.mark.skipif(not threads.EXECUTOR_SUPPORTED, reason="asgiref < 3.13 has no pool")
def test_huge_thread_pool_idle_keeps_every_thread_and_still_describes() -> None:
    with override_settings(ASGI_THREAD_POOL_IDLE=10**5000):
        stack = build([])
    assert stack.boundary.pool is not None
    assert stack.boundary.pool.idle_max == sys.maxsize
    assert f"idle<={sys.maxsize}" in stack.describe()


def test_thread_pool_max_error_names_the_setting_the_value_and_the_default() -> None:
    with override_settings(ASGI_THREAD_POOL_MAX=0):
        err = error_of([])
    assert str(err).startswith("ASGI_THREAD_POOL_MAX = 0 must be an integer >= 1")
    assert err.hint is not None and "default is 40" in err.hint and "waits" in err.hint


@pytest.mark.skipif(not threads.EXECUTOR_SUPPORTED, reason="asgiref < 3.13 has no pool")
def test_thread_pool_max_bounds_the_pool_and_describe_says_so() -> None:
    with override_settings(ASGI_THREAD_POOL_MAX=3):
        stack = build([])
    assert stack.boundary.pool is not None and stack.boundary.pool.max_threads == 3
    assert "max 3" in stack.describe()
    default = build([])
    assert default.boundary.pool is not None and default.boundary.pool.max_threads == 40


# -- requests ----------------------------------------------------------------------------


async def test_exception_in_a_layer_propagates_unchanged() -> None:
    stack = build(["tests.layers.RaisesInRequest"])
    with pytest.raises(KeyError, match="raised by the layer") as info:
        await call(stack)
    # The traceback still ends in the layer's own frame.
    assert info.traceback[-1].name == "__call__"
    assert "tests/layers.py" in str(info.traceback[-1].path)
