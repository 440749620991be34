"""Settings for the example project served by the README's first command."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "middleware_stack",
    "middleware_stack.contrib.auth",
    "example_project",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "middleware_stack.contrib.auth.ScopeUserMiddleware",
    "middleware_stack.contrib.timing.RouteMiddleware",  # route labels for timing records
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
if os.environ.get("EXAMPLE_PG_PORT"):  # the reliability suite serves the example on PostgreSQL
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ["EXAMPLE_PG_PORT"],
        "USER": "postgres",
        "NAME": os.environ.get("EXAMPLE_PG_DB", "postgres"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"application_name": os.environ.get("EXAMPLE_PG_APP", "example")},
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True

# The ASGI middleware stack, first entry = outermost (like MIDDLEWARE).
# A single-page app on the Vite dev server (http://localhost:5173) calls /api/.
SPA_ORIGIN = "http://localhost:5173"
ASGI_MIDDLEWARE: list[object] = [
    # Outermost, so it sees the whole request: Server-Timing, and one log line per request.
    (
        "middleware_stack.contrib.timing.TimingMiddleware",
        {
            "on_record": ["middleware_stack.contrib.timing.exporters.LoggingExporter"],
            "exclude_paths": [r"^/healthz$"],
        },
    ),
    (
        "middleware_stack.contrib.cors.CORSMiddleware",
        {
            "allow_origins": [SPA_ORIGIN],
            "allow_credentials": True,
            "allow_methods": ["GET", "POST", "PUT", "DELETE"],
            "allow_headers": ["Content-Type", "X-CSRFToken"],
            "max_age": 600,
            "paths": r"^/api/",
        },
    ),
    # The identity an authenticating proxy in front of us (on this machine) passes in
    # X-Forwarded-User; from any other client the header is stripped.
    {
        "middleware": "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
        "options": {
            "backends": [
                (
                    "middleware_stack.contrib.auth.TrustedHeaderBackend",
                    {"header": "X-Forwarded-User", "trusted_proxies": ["127.0.0.1", "::1"]},
                )
            ],
        },
        "scopes": ["http", "websocket"],
    },
]
CSRF_TRUSTED_ORIGINS = [SPA_ORIGIN]
ASGI_LIFESPAN = "example_project.lifespan.lifespan"
# What daphne's runserver and `manage.py asgi_stack` serve and describe.
ASGI_APPLICATION = "example_project.asgi.application"

# One line per request from the timing layer, plus the stack's own warnings.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "middleware_stack": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
