"""Settings for the Channels site: Django inside ProtocolTypeRouter, served by real servers."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.channels_site.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "middleware_stack",
    "middleware_stack.contrib.auth",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]  # sets Content-Length
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEST_SQLITE_PATH", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_APPLICATION = "tests.channels_site.asgi.application"
ASGI_MIDDLEWARE = [
    ("starlette.middleware.gzip.GZipMiddleware", {"minimum_size": 100}),
    {
        "middleware": "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
        "options": {
            "backends": [
                (
                    "middleware_stack.contrib.auth.TrustedHeaderBackend",
                    {"header": "X-Forwarded-User", "trusted_proxies": ["127.0.0.1"]},
                )
            ],
        },
        "scopes": ["http", "websocket"],
    },
]
ASGI_MIDDLEWARE_CHECKS = os.environ.get("CHANNELS_SITE_CHECKS", "warn")
LOGGING_CONFIG = None
if os.environ.get("LIFESPAN_LOG"):  # the daphne lifespan-fallback test
    ASGI_LIFESPAN = "tests.channels_site.lifespan.lifespan"
