"""A module that fails at import time (used to test import error reporting)."""

raise RuntimeError("this module is broken on purpose")
