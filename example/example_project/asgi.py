"""ASGI entry point: Django, wrapped in the stack declared by ASGI_MIDDLEWARE."""

import os

from django.core.asgi import get_asgi_application

from middleware_stack import build_stack

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

application = build_stack(get_asgi_application())
