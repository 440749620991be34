"""A Django site on the throwaway PostgreSQL, served by uvicorn in the thread-reuse tests.

Environment: PG_PORT, CONN_MAX_AGE, ATOMIC_REQUESTS, ASGI_THREAD_REUSE, ASGI_ONE_HOP, ASGI_THREAD_POOL_IDLE,
ASGI_THREAD_POOL_MAX, ASGI_THREAD_POOL_IDLE_TIMEOUT, PG_BEARER (1: the auth layer with a bearer token verified by a database
query), SQLITE_PATH (set: the same site on that sqlite file instead of PostgreSQL).
"""

import os

from tests.pg_database import pg_database

SECRET_KEY = "pg-site-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.pg_site.urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "middleware_stack"]
MIDDLEWARE = ["tests.pg_site.views.sync_only_middleware"]
DATABASES = {
    "default": pg_database(
        CONN_MAX_AGE=int(os.environ.get("CONN_MAX_AGE", "0")),
        ATOMIC_REQUESTS=os.environ.get("ATOMIC_REQUESTS", "0") == "1",
        OPTIONS={"application_name": os.environ.get("PG_APP_NAME", "ms_site")},
    )
}
if os.environ.get("SQLITE_PATH"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SQLITE_PATH"],
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "ATOMIC_REQUESTS": DATABASES["default"]["ATOMIC_REQUESTS"],
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_MIDDLEWARE: list[object] = []
if os.environ.get("PG_BEARER") == "1":  # a bearer token checked against the database
    ASGI_MIDDLEWARE = [
        (
            "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
            {
                "backends": [
                    (
                        "middleware_stack.contrib.auth.BearerTokenBackend",
                        {"verify": "tests.pg_site.views.orm_verify"},
                    )
                ]
            },
        )
    ]
ASGI_MIDDLEWARE_CHECKS = "off"
ASGI_THREAD_REUSE = os.environ.get("ASGI_THREAD_REUSE", "1") == "1"
ASGI_ONE_HOP = os.environ.get("ASGI_ONE_HOP", "1") == "1"
ASGI_THREAD_POOL_IDLE = int(os.environ.get("ASGI_THREAD_POOL_IDLE", "4"))
ASGI_THREAD_POOL_MAX = int(os.environ.get("ASGI_THREAD_POOL_MAX", "40"))
ASGI_THREAD_POOL_IDLE_TIMEOUT = float(os.environ.get("ASGI_THREAD_POOL_IDLE_TIMEOUT", "5"))
LOGGING = {
    "version": 1,
    # Keep the server's own loggers (uvicorn.error, uvicorn.access): a test reading the
    # server's log then sees a request the server dropped, and why.
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "CRITICAL"},
        "middleware_stack": {"handlers": ["console"], "level": "WARNING"},
    },
}
