"""Settings for the served timing site (gunicorn multiprocess test, docs screenshot)."""

from __future__ import annotations

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.timing_site.urls"
INSTALLED_APPS = ["middleware_stack"]
MIDDLEWARE = ["middleware_stack.contrib.timing.RouteMiddleware"]
DATABASES: dict[str, object] = {}
ASGI_MIDDLEWARE = [
    (
        "middleware_stack.contrib.timing.TimingMiddleware",
        {
            "on_record": ["middleware_stack.contrib.timing.exporters.PrometheusExporter"],
            "exclude_paths": [r"/healthz$", r"/metrics$"],
        },
    ),
]
ASGI_MIDDLEWARE_CHECKS = "off"
LOGGING_CONFIG = None
