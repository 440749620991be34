"""Small layers and factories used by the builder tests, importable by dotted path."""

from __future__ import annotations

from typing import Any

from asgiref.sync import markcoroutinefunction

from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send


class Tag:
    """Appends ``name`` to an ``x-trail`` response header, so order is visible."""

    def __init__(self, app: ASGIApp, name: str = "tag") -> None:
        self.app = app
        self.name = name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = scope.get("trail", [])
        scope = {**scope, "trail": [*seen, self.name.decode()]}

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-trail", self.name)]
            await send(message)

        await self.app(scope, receive, tagged)


class SeesScopes:
    """Records every scope type it is called with (class-level, reset by tests)."""

    seen: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        SeesScopes.seen.append(scope["type"])
        await self.app(scope, receive, send)


def tag_factory(app: ASGIApp, *, name: str) -> ASGIApp:
    """A plain function factory."""
    return Tag(app, name=name)


def returns_none(app: ASGIApp) -> None:
    return None


class SyncCall:
    """Not async: a plain def __call__ with the ASGI 3 signature."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        return self.app(scope, receive, send)


class SyncCallMarked:
    """A sync __call__ that returns a coroutine, marked as such: accepted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        markcoroutinefunction(self)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        return self.app(scope, receive, send)


class ASGI2Instance:
    """ASGI 2: instance(scope) -> async callable(receive, send)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope) -> Any:
        async def inner(receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)

        return inner


def asgi2_class_factory(app: ASGIApp) -> type:
    """Returns an ASGI 2 class (instantiated with the scope, then awaited)."""

    class Asgi2App:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await app(self.scope, receive, send)

    return Asgi2App


class NeedsOption:
    def __init__(self, app: ASGIApp, required: str, optional: int = 1) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Outer:
    """Declares it wants to be outermost (a warning otherwise)."""

    stack_constraints = {"outermost": True}

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class MustWrapTag(Outer):
    """Must sit outside tests.layers.Tag; may appear only once."""

    stack_constraints = {"outside": ["tests.layers.Tag"], "unique": True}


class MustBeInsideTag(Outer):
    stack_constraints = {"inside": ["tests.layers.Tag"]}


class BadConstraints(Outer):
    stack_constraints = {"outsid": ["x"]}


class ConstraintAsAString(Outer):
    stack_constraints = {"outside": "tests.layers.Tag"}  # a str, not a list of paths


class ConstraintFlagNotABool(Outer):
    stack_constraints = {"outermost": "yes"}


class Explodes:
    def __init__(self, app: ASGIApp) -> None:
        raise ValueError("cannot start: missing API key")


class RaisesInRequest:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise KeyError("raised by the layer")
        await self.app(scope, receive, send)


NOT_CALLABLE = 42


class Inner(Outer):
    """Declares it wants to be innermost (a warning otherwise)."""

    stack_constraints = {"innermost": True}


class AnswersLifespan:
    """Answers lifespan itself and never passes it on (as some app-level layers do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            from tests.asgi import answer_lifespan

            await answer_lifespan(receive, send)
            return
        await self.app(scope, receive, send)


class HTTPOnly:
    """Written for HTTP only: asserts the scope type, as many older layers do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", f"HTTPOnly got a {scope['type']} scope"
        await self.app(scope, receive, send)


class AnswersThenForwards:
    """Answers lifespan startup at once, then passes lifespan on in a task (replaying
    startup to the inner app and swallowing its answers): the app's lifespan does run."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        import asyncio

        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        answers: asyncio.Queue[Message] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def inner_send(message: Message) -> None:
            await answers.put(message)

        task = asyncio.create_task(self.app(scope, inbox.get, inner_send))
        await answers.get()  # the inner startup answer, swallowed
        await inbox.put(await receive())  # lifespan.shutdown, passed on
        await answers.get()
        await task
        await send({"type": "lifespan.shutdown.complete"})


class SlowToStart:
    """Does its own slow start-up work before passing lifespan on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        if scope["type"] == "lifespan":
            await asyncio.sleep(30)
        await self.app(scope, receive, send)


class SendsOddMessage:
    """Sends a message whose type is not even a string, then passes lifespan on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await send({"type": ["not", "a", "type"]})
        await self.app(scope, receive, send)
