"""Fetch-standard CORS as a pure ASGI layer.

The package is split along its seams: :mod:`.parsing` (origins, tokens, header bytes),
:mod:`.config` and :mod:`.conf` (options and django-cors-headers' ``CORS_*`` settings,
validated once), :mod:`.breadth` (credentialed patterns tried on hostile origins at
build time) and :mod:`.middleware` (the per-request half, whose docstring tells the
whole story).
"""

from middleware_stack.contrib.cors.config import (
    CORSHEADERS_DEFAULT_HEADERS,
    CORSHEADERS_DEFAULT_METHODS,
    FROM_SETTINGS,
)
from middleware_stack.contrib.cors.middleware import CORSMiddleware
from middleware_stack.contrib.cors.parsing import MAX_AGE_CAP, MAX_REQUEST_HEADERS, escape

__all__ = ["CORSMiddleware"]

# One public home: error messages, order constraints and docs name this path.
CORSMiddleware.__module__ = __name__

__all__ += [
    "CORSHEADERS_DEFAULT_HEADERS",
    "CORSHEADERS_DEFAULT_METHODS",
    "FROM_SETTINGS",
    "MAX_AGE_CAP",
    "MAX_REQUEST_HEADERS",
    "escape",
]
