"""The ASGI application uvicorn serves in the end-to-end benchmark.

``BENCH_APP`` names the configuration (see :mod:`benchmarks.apps`), e.g.::

    BENCH_APP=S uvicorn benchmarks.serve:application
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_settings")

import django

django.setup(set_prefix=False)

from benchmarks.apps import build_app  # noqa: E402

application = build_app(os.environ.get("BENCH_APP", "A"))
