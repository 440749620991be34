"""The example project with daphne's runserver and no ASGI_APPLICATION (test_devserver).

As in a startproject layout, WSGI_APPLICATION names the project package, beside which
asgi.py is found.
"""

from example_project.settings import *  # noqa: F403

INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # noqa: F405
WSGI_APPLICATION = "example_project.wsgi.application"
del ASGI_APPLICATION  # noqa: F821
