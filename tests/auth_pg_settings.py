"""A Django site on the throwaway PostgreSQL for the auth passthrough server tests.

Environment: PG_PORT, PG_DB, AUTH_TEST_TRUSTED (comma-separated trusted proxies).
"""

import os

from tests.pg_database import pg_database

SECRET_KEY = "auth-pg-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.auth_urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "middleware_stack",
    "middleware_stack.contrib.auth",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "middleware_stack.contrib.auth.ScopeUserMiddleware",
]
DATABASES = {"default": pg_database(NAME=os.environ.get("PG_DB", "postgres"))}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_MIDDLEWARE = [
    (
        "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
        {
            "backends": [
                (
                    "middleware_stack.contrib.auth.TrustedHeaderBackend",
                    {
                        "trusted_proxies": os.environ.get("AUTH_TEST_TRUSTED", "127.0.0.1").split(
                            ","
                        )
                    },
                )
            ]
        },
    )
]
ASGI_MIDDLEWARE_CHECKS = "off"
