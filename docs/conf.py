"""Sphinx configuration for middleware_stack's docs (built with -W in CI)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

project = "middleware_stack"
author = "middleware_stack developers"
copyright = "2026, middleware_stack developers"
release = "0.1.0"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
html_theme = "furo"
html_static_path = ["_static"]
html_title = "middleware_stack"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, None]] = {}
exclude_patterns = ["_build"]
html_css_files = ["tables.css"]
