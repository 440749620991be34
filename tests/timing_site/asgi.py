"""``tests.timing_site.asgi:application``: Django behind the timing layer."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.timing_site.settings")

from django.core.asgi import get_asgi_application

from middleware_stack import build_stack

application = build_stack(get_asgi_application())
