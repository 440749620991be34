"""tests.settings on the throwaway PostgreSQL (PG_PORT), for the test client's DB cases."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("PG_PORT", "5432"),
        "USER": "postgres",
        "NAME": "postgres",
    }
}
