"""System tools some tests need (Debian's prometheus and promtool): found on PATH, else the test is skipped on a
developer's machine and fails under CI=true, where scripts/lib.sh has installed them."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, comes_from: str) -> str:
    """The path of `name` on PATH; without it, skip the test (fail it under CI=true, where it must run)."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not on PATH: it comes from {comes_from}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
