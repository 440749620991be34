"""The WSGI application gunicorn serves in the end-to-end benchmark: Django's
``WSGIHandler`` with ``startproject``'s ``MIDDLEWARE``, the same project uvicorn serves
through the stack as ``BENCH_APP=S0-mw``::

    gunicorn -w 2 benchmarks.serve_wsgi:application
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_settings")

import django

django.setup(set_prefix=False)

from benchmarks.django_settings import STARTPROJECT_MIDDLEWARE  # noqa: E402
from benchmarks.wsgi import wsgi_handler  # noqa: E402

application = wsgi_handler(STARTPROJECT_MIDDLEWARE)
