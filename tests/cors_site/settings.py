"""Settings for the browser test's API: three CORS policies, one per path prefix.

The page origin is passed in ``CORS_TEST_PAGE_ORIGIN`` by the test (it is only known
once the page server has a port).
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.cors_site.urls"
PAGE_ORIGIN = os.environ.get("CORS_TEST_PAGE_ORIGIN", "http://127.0.0.1:1")
CORS = "middleware_stack.contrib.cors.CORSMiddleware"

ASGI_MIDDLEWARE = [
    {
        "middleware": CORS,
        "name": "cors-allowed",
        "options": {
            "allow_origins": [PAGE_ORIGIN],
            "allow_credentials": True,
            "allow_methods": ["PUT"],
            "allow_headers": ["X-Custom"],
            "expose_headers": ["X-Api-Version"],
            "paths": r"^/allowed/",
        },
    },
    {
        "middleware": CORS,
        "name": "cors-nocreds",
        "options": {
            "allow_origins": [PAGE_ORIGIN],
            "allow_headers": ["X-Custom"],
            "paths": r"^/nocreds/",
        },
    },
    {
        "middleware": CORS,
        "name": "cors-denied",
        "options": {
            "allow_origins": ["https://app.example.com"],
            "allow_credentials": True,
            "allow_headers": ["X-Custom"],
            "paths": r"^/denied/",
        },
    },
]
