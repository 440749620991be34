"""The API served through the stack (``ASGI_MIDDLEWARE`` from ``tests.cors_site.settings``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.cors_site.settings")

from django.core.asgi import get_asgi_application

from middleware_stack import build_stack

application = build_stack(get_asgi_application())
