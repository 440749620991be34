"""tests.settings on the throwaway PostgreSQL (PG_PORT), for the test client's DB cases."""

from tests.pg_database import pg_database
from tests.settings import *  # noqa: F403

DATABASES = {"default": pg_database()}
