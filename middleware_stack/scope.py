"""What layers read from an ASGI scope the way Django reads it."""

from __future__ import annotations

from middleware_stack.types import Scope

__all__ = ["path_info"]


def path_info(scope: Scope) -> str:
    """The path below ``root_path``, as Django's URLconf sees it (``request.path_info``).

    Since ASGI 2.x servers put the mount prefix into both ``path`` and ``root_path``;
    a path-matching option (``required_paths``, CORS ``paths``) written against the
    URLconf must not fail open under a prefix. Like Django, a ``path`` that does not
    start with ``root_path`` is taken as it is.
    """
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        return path[len(root) :]
    return path
