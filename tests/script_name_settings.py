"""A Django site served under FORCE_SCRIPT_NAME = "/app", with the auth, CORS and timing
layers all matching paths (issue 15, item 2)."""

from tests.settings import *  # noqa: F403

FORCE_SCRIPT_NAME = "/app"
ROOT_URLCONF = "tests.auth_urls"
ASGI_MIDDLEWARE = [
    ("middleware_stack.contrib.timing.TimingMiddleware", {"exclude_paths": [r"^/api/"]}),
    (
        "middleware_stack.contrib.cors.CORSMiddleware",
        {"allow_origins": ["https://app.example.com"], "paths": r"^/api/"},
    ),
    (
        "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
        {
            "backends": [
                (
                    "middleware_stack.contrib.auth.TrustedHeaderBackend",
                    {"trusted_proxies": ["10.0.0.0/8"]},
                )
            ],
            "required_paths": [r"^/api/"],
        },
    ),
]
