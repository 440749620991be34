"""Django settings for the test suite (sqlite; PostgreSQL tests override DATABASES)."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "middleware_stack",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEST_SQLITE_PATH", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_MIDDLEWARE: list[object] = []
ASGI_MIDDLEWARE_CHECKS = "off"
LOGGING_CONFIG = None
