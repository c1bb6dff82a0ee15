"""Helpers shared by unit and integration tests: running the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_tcel(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300, input: str | None = None
) -> Run:
    """Run `python -m celery_cli ARGS` as a user would, without a terminal."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "celery_cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        input=input,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config, and no TCEL_* settings from the environment."""
    for key in list(os.environ):
        if key.startswith("TCEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "tcel" / "config.env"
