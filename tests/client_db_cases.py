"""Database cases for the test client, run by tests/test_test_client_db.py in a pytest
subprocess (once on SQLite, once on PostgreSQL, where a connection on another thread
would not see the test's uncommitted rows). Not collected by the main run: its name
does not start with ``test_``.

The views read and write through the ORM from sync code, which Django runs on the
thread the handler gives it; each case checks that it is the test's connection.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings

from middleware_stack.test import AsyncClient, Client

SITE = override_settings(
    ROOT_URLCONF="tests.client_site.urls",
    ASGI_MIDDLEWARE=[("tests.client_site.layers.Marks", {"mark": "db"})],
)


@SITE
class ClientInTestCase(TestCase):
    client_class = Client
    async_client_class = AsyncClient

    @classmethod
    def setUpTestData(cls) -> None:
        User.objects.create(username="from-setup")

    def test_view_sees_the_tests_rows_and_its_writes_are_the_tests(self) -> None:
        User.objects.create(username="in-test")
        response = self.client.get("/users/")
        assert response["x-layer"] == "db"  # through the stack
        assert response.json()["users"] == ["from-setup", "in-test"]
        assert response.json()["thread"] == threading.get_ident()
        self.client.get("/users/create/", {"name": "by-view"})
        assert User.objects.filter(username="by-view").exists()
        assert connection.in_atomic_block  # still the test's transaction

    async def test_async_client_in_an_async_test_uses_the_tests_thread(self) -> None:
        response = await self.async_client.get("/users/")
        assert response["x-layer"] == "db"
        assert response.json()["users"] == ["from-setup"]

    def test_writes_of_the_other_tests_were_rolled_back(self) -> None:
        names = set(User.objects.values_list("username", flat=True))
        assert names == {"from-setup"}
        assert self.client.get("/users/").json()["users"] == ["from-setup"]


@SITE
class ClientInTransactionTestCase(TransactionTestCase):
    client_class = Client

    def test_view_sees_committed_rows_and_the_test_sees_its_writes(self) -> None:
        User.objects.create(username="committed")
        assert self.client.get("/users/").json()["users"] == ["committed"]
        self.client.get("/users/create/", {"name": "by-view"})
        assert User.objects.filter(username="by-view").exists()

    def test_tables_were_flushed_between_tests(self) -> None:
        assert self.client.get("/users/").json()["users"] == []


@pytest.fixture
def site() -> object:
    with SITE:
        yield


@pytest.mark.usefixtures("site")
def test_db_fixture_view_sees_the_tests_rows(db: None, stack_client: Client) -> None:
    User.objects.create(username="pytest-db")
    data = stack_client.get("/users/").json()
    assert data["users"] == ["pytest-db"]
    assert data["thread"] == threading.get_ident()
    stack_client.get("/users/create/", {"name": "pytest-by-view"})
    assert User.objects.count() == 2


@pytest.mark.usefixtures("site")
def test_db_fixture_rolled_back_the_previous_test(db: None, stack_client: Client) -> None:
    assert stack_client.get("/users/").json()["users"] == []


@pytest.mark.usefixtures("site")
def test_transactional_db_fixture(transactional_db: None, stack_client: Client) -> None:
    User.objects.create(username="tx")
    assert stack_client.get("/users/").json()["users"] == ["tx"]
