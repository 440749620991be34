"""Django settings for the benchmark harness.

``MIDDLEWARE`` is empty: configuration A is bare ``get_asgi_application()``, the
baseline the issues' targets are set against, and D adds only django-cors-headers to
it. ``STARTPROJECT_MIDDLEWARE`` (the list ``django-admin startproject`` writes) is run as
a second pair of cases: each of those classes is a ``MiddlewareMixin`` that Django calls
through ``sync_to_async`` under ASGI, a thread hop per hook, which dominates the cost.
None of it touches the database for the hello views. ``corsheaders`` is installed so
configuration D is set up exactly as its README says. The ``CORS_*`` values are the same policy the
ASGI CORS layers get in :mod:`benchmarks.apps`.
"""

from __future__ import annotations

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.django_app"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "corsheaders",
    "middleware_stack",
]
MIDDLEWARE: list[str] = []
#: ``startproject``'s list, for the "startproject" cases.
STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None

ASGI_MIDDLEWARE: list[object] = []
ASGI_MIDDLEWARE_CHECKS = "off"
ASGI_THREAD_REUSE = True
# The memory case holds 1,000 requests in the view at once. At the default bound (40)
# the rest would wait for a worker thread, as they should, and never reach the view, so
# the bound is raised here to measure what 1,000 requests in flight cost.
ASGI_THREAD_POOL_MAX = 2000

# django-cors-headers, for configuration D: the policy of benchmarks.apps.CORS_OPTIONS.
CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
CORS_ALLOW_METHODS = ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-requested-with"]
CORS_ALLOW_CREDENTIALS = True
CORS_PREFLIGHT_MAX_AGE = 600
