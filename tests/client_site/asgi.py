"""An asgi.py as a project writes it, with its own middleware list."""

from django.core.asgi import get_asgi_application

from middleware_stack import build_stack

application = build_stack(
    get_asgi_application(), [("tests.client_site.layers.Marks", {"mark": "from-asgi-py"})]
)

#: Django alone, as a project without layers deploys it.
bare = get_asgi_application()
