import os

from django.core.asgi import get_asgi_application

from middleware_stack import build_stack

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.pg_site.settings")
application = build_stack(get_asgi_application())
