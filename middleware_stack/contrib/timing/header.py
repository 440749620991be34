"""The ``Server-Timing`` header value: view metrics as W3C syntax that is always valid."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

#: At most this many view metrics go into one header (all stay in the record):
#: a loop that times every query must not grow the header past proxies' limits.
MAX_HEADER_METRICS = 32
_MAX_NAME = 64
_MAX_DESC = 128

_NOT_TCHAR = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_NOT_QDTEXT = re.compile(r"[^\t\x20-\x7e]")


def _token(name: str) -> str:
    """A metric name as an RFC 9110 token: every other character becomes ``_``.

    Only the first ``_MAX_NAME`` characters are kept, so the cache is keyed on them: a
    view that names metrics after client input fills it with at most
    512 x ``_MAX_NAME`` characters, never with the whole names.
    """
    return _cached_token(name[:_MAX_NAME])


@functools.lru_cache(maxsize=512)
def _cached_token(name: str) -> str:
    return _NOT_TCHAR.sub("_", name) or "_"


def _quoted(desc: str) -> str:
    """A description as a quoted-string: printable ASCII only, ``"`` and ``\\`` escaped."""
    text = _NOT_QDTEXT.sub("?", desc[:_MAX_DESC])
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_metrics(metrics: Iterable[tuple[str, float | None, str | None]]) -> bytes:
    """``name;dur=1.234;desc="..."`` entries, comma-separated; always valid syntax."""
    parts = []
    for i, (name, dur, desc) in enumerate(metrics):
        if i == MAX_HEADER_METRICS:
            break
        part = _token(name)
        if dur is not None:
            part += f";dur={dur:.3f}"
        if desc is not None:
            part += ";desc=" + _quoted(desc)
        parts.append(part)
    return ", ".join(parts).encode("ascii")
