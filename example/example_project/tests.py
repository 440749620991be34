"""The example's own tests, through its ASGI stack (``python manage.py test``).

Django's ``self.client`` calls Django's handler directly and never meets the layers in
``ASGI_MIDDLEWARE``: CORS, identity and Server-Timing would go untested. With
``middleware_stack.test.Client`` as the client class, every request crosses them.
"""

from django.contrib.auth.models import User
from django.test import TestCase, override_settings

from middleware_stack.test import AsyncClient, Client

SPA = "http://localhost:5173"


class StackTestCase(TestCase):
    client_class = Client
    async_client_class = AsyncClient


class CORSTests(StackTestCase):
    def test_preflight_from_the_spa_is_allowed(self) -> None:
        response = self.client.options(
            "/api/items/1/",
            headers={
                "Origin": SPA,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        self.assertEqual(response.status_code, 204)
        self.assertEqual(response["Access-Control-Allow-Origin"], SPA)
        self.assertEqual(response["Access-Control-Allow-Credentials"], "true")
        self.assertIn("PUT", response["Access-Control-Allow-Methods"])
        self.assertEqual(response["Access-Control-Max-Age"], "600")

    def test_preflight_from_another_origin_is_refused(self) -> None:
        response = self.client.options(
            "/api/items/1/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertNotIn("Access-Control-Allow-Origin", response)

    def test_credentialed_get_from_the_spa(self) -> None:
        response = self.client.get("/api/hello/", headers={"Origin": SPA})
        self.assertEqual(response.json(), {"hello": "world", "path": "/api/hello/"})
        self.assertEqual(response["Access-Control-Allow-Origin"], SPA)
        self.assertIn("Origin", response["Vary"])

    def test_pages_outside_api_get_no_cors_headers(self) -> None:
        response = self.client.get("/healthz", headers={"Origin": SPA})
        self.assertNotIn("Access-Control-Allow-Origin", response)

    def test_a_changed_policy_takes_effect(self) -> None:
        # The stack reads ASGI_MIDDLEWARE once; the test client rebuilds it on the change.
        with override_settings(
            ASGI_MIDDLEWARE=[
                ("middleware_stack.contrib.cors.CORSMiddleware", {"allow_origins": ["*"]})
            ]
        ):
            response = self.client.get("/api/hello/", headers={"Origin": "https://any.example"})
        self.assertEqual(response["Access-Control-Allow-Origin"], "*")


class IdentityTests(StackTestCase):
    def test_identity_from_the_trusted_proxy(self) -> None:
        response = self.client.get("/api/whoami/", headers={"X-Forwarded-User": "alice"})
        data = response.json()
        self.assertEqual(data["identity"], "alice")
        self.assertEqual(data["user"], "alice")  # made by RemoteUserBackend, in this test
        self.assertTrue(User.objects.filter(username="alice").exists())

    def test_identity_header_from_an_untrusted_client_is_stripped(self) -> None:
        response = self.client.get(
            "/api/whoami/", headers={"X-Forwarded-User": "mallory"}, REMOTE_ADDR="203.0.113.9"
        )
        self.assertEqual(response.json(), {"identity": None, "backend": None, "user": None})

    def test_the_previous_tests_user_was_rolled_back(self) -> None:
        self.assertFalse(User.objects.exists())

    def test_a_session_login_still_works(self) -> None:
        self.client.force_login(User.objects.create(username="bob"))
        data = self.client.get("/api/whoami/").json()
        self.assertEqual((data["identity"], data["user"]), (None, "bob"))

    async def test_async_client_carries_the_identity(self) -> None:
        response = await self.async_client.get(
            "/api/whoami/", headers={"X-Forwarded-User": "carol"}
        )
        self.assertEqual(response.json()["identity"], "carol")


class ServerTimingTests(StackTestCase):
    def test_responses_carry_server_timing(self) -> None:
        response = self.client.get("/api/hello/")
        self.assertIn("total;dur=", response["Server-Timing"])

    def test_errors_carry_server_timing_and_cors(self) -> None:
        client = Client(raise_request_exception=False)
        response = client.get("/api/fail/", headers={"Origin": SPA})
        self.assertEqual(response.status_code, 500)
        self.assertIn("Server-Timing", response)
        self.assertEqual(response["Access-Control-Allow-Origin"], SPA)

    def test_home_page_renders_through_the_stack(self) -> None:
        response = self.client.get("/")
        self.assertTemplateUsed(response, "home.html")
        self.assertIn("Server-Timing", response)
