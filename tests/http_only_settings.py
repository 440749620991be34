"""The example's settings, with an HTTP-only layer (it asserts the scope type) outermost."""

from example_project.settings import *  # noqa: F403
from example_project.settings import ASGI_MIDDLEWARE

ASGI_MIDDLEWARE = ["tests.layers.HTTPOnly", *ASGI_MIDDLEWARE]
