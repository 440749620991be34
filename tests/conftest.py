from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_tool(path_or_name: str, why: str) -> str:
    """Return the tool's path; skip with a reason locally, fail under CI=true."""
    found = shutil.which(path_or_name) or (path_or_name if os.path.exists(path_or_name) else None)
    if found:
        return found
    message = f"{path_or_name} is not installed: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run must install it)")
    pytest.skip(message)
    raise AssertionError("unreachable")
