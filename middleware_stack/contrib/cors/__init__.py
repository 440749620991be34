"""Fetch-standard CORS as a pure ASGI layer.

Every decision that can be made before the first request is made in ``__init__``:
configured origins are parsed and normalised (``HTTPS://Example.com:443`` becomes
``https://example.com``), methods and header names are checked against the HTTP token
grammar, and every constant response header is encoded to bytes once. The request path
is then a scan of the request headers, a set lookup for exact origins, and (for actual
requests) one pass over the response headers to drop any CORS header the app set and to
merge ``Vary``.

Strictness is deliberate: a browser only ever sends a serialised origin (lowercase
scheme and host, no default port), so anything else in ``Origin`` is not a browser and
gets no CORS headers at all. Preflights are checked in full (origin, method and every
requested header), and a refused preflight is a ``403`` without CORS headers, so the
browser's console and this layer's debug log tell the same story.

Given no policy option, the layer reads django-cors-headers' ``CORS_*`` settings, so a
project switches by listing this class in ``ASGI_MIDDLEWARE``.
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
