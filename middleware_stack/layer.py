"""The :class:`Layer` object, and importing a factory from its dotted path.

Kept apart from :mod:`middleware_stack.entries` (which parses the settings entry forms
into layers) so that the public ``Layer`` and the import errors read on their own.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.types import SCOPE_TYPES

__all__ = ["ALL_SCOPES", "Layer", "dotted_path", "import_object", "listed"]

ALL_SCOPES = SCOPE_TYPES


class Layer:
    """One entry of the stack.

    Usable directly in ``ASGI_MIDDLEWARE``; ``stack.layers`` holds resolved copies
    (``factory`` imported, ``index`` set). ``ignore_order`` says the position is
    intended, silencing order *warnings* (never order errors).
    """

    __slots__ = (
        "enabled",
        "factory",
        "ignore_order",
        "index",
        "middleware",
        "name",
        "options",
        "scopes",
    )

    def __init__(
        self,
        middleware: str | Callable[..., Any],
        options: Mapping[str, Any] | None = None,
        *,
        enabled: bool = True,
        scopes: Iterable[str] | None = None,
        name: str | None = None,
        ignore_order: bool = False,
    ) -> None:
        self.middleware = middleware
        self.options: dict[str, Any] = dict(options) if options is not None else {}
        self.enabled = enabled
        # Anything that is not a set of hashable values is kept as given, for
        # parse_entry to refuse with the entry's position.
        self.scopes: frozenset[str] = ALL_SCOPES if scopes is None else _frozen(scopes)
        self.name: str = _default_name(middleware) if name is None else name
        self.ignore_order = ignore_order
        self.factory: Callable[..., Any] | None = (
            None if isinstance(middleware, str) else middleware
        )
        self.index: int | None = None

    @property
    def path(self) -> str:
        """The dotted path of the factory, as written or as derived from the object."""
        if isinstance(self.middleware, str):
            return self.middleware
        return dotted_path(self.middleware)

    def __repr__(self) -> str:
        scopes = self.scopes
        extra = "" if scopes == ALL_SCOPES else f", scopes={listed(scopes)!r}"
        return f"Layer({self.path!r}, {self.options!r}{extra}, name={self.name!r})"


def _frozen(scopes: Any) -> Any:
    if isinstance(scopes, str | bytes):
        return scopes
    try:
        return frozenset(scopes)
    except TypeError:  # not iterable, or unhashable items
        return scopes


def listed(scopes: Any) -> Any:
    """Scopes in a stable order for messages: sets sorted (whatever their item types)."""
    if isinstance(scopes, frozenset | set):
        return sorted(scopes, key=repr)
    return scopes


def dotted_path(obj: object) -> str:
    """``module.QualName`` of a class or function (or of an instance's class)."""
    target = obj if (inspect.isclass(obj) or inspect.isroutine(obj)) else type(obj)
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{qualname}"


def _default_name(middleware: object) -> str:
    if isinstance(middleware, str):
        return middleware.rpartition(".")[2] or middleware
    return dotted_path(middleware).rpartition(".")[2]


def import_object(path: str, *, index: int | None = None, what: str = "ASGI_MIDDLEWARE") -> Any:
    """Import ``pkg.module.Name``, with errors that say which part failed and why."""
    module_path, _, attr = path.rpartition(".")
    if not module_path or not attr:
        raise StackConfigurationError(
            f"{path!r} is not a dotted path.",
            index=index,
            path=path,
            hint="Write the full import path, e.g. 'mypackage.middleware.MyMiddleware'.",
            id="middleware_stack.E002",
        )
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_path
        raise StackConfigurationError(
            f"Cannot import module {module_path!r}: no module named {missing!r}.",
            index=index,
            path=path,
            hint=f"Check the spelling, and that the package providing {missing!r} "
            "is installed in this environment.",
            id="middleware_stack.E002",
        ) from exc
    except Exception as exc:
        raise StackConfigurationError(
            f"Importing module {module_path!r} raised {type(exc).__name__}: {exc}.",
            index=index,
            path=path,
            hint="Fix the error in that module; the traceback is chained to this error.",
            id="middleware_stack.E002",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=1)
        hint = (
            f"Did you mean {module_path}.{close[0]!r}?"
            if close
            else f"Check the name; {module_path!r} defines: {', '.join(names[:12]) or 'nothing'}."
        )
        raise StackConfigurationError(
            f"Module {module_path!r} has no attribute {attr!r}.",
            index=index,
            path=path,
            hint=hint,
            id="middleware_stack.E002",
        ) from None
