"""The timing site with ``LoggingExporter`` writing to the server's stderr (issue 15, item 11)."""

from tests.timing_site.settings import *  # noqa: F403

ASGI_MIDDLEWARE = [
    (
        "middleware_stack.contrib.timing.TimingMiddleware",
        {"on_record": ["middleware_stack.contrib.timing.exporters.LoggingExporter"]},
    ),
]
LOGGING_CONFIG = "logging.config.dictConfig"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"tagged": {"format": "TIMING-LOG: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "tagged"}},
    "loggers": {"middleware_stack.timing": {"handlers": ["stderr"], "level": "INFO"}},
}
