"""Start-up stays fast: the CLI's entry module pulls in none of the heavy libraries."""

import json
import subprocess
import sys

HEAVY = ["docker", "celery", "kombu", "redis", "amqp", "rich.table", "requests"]


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = f"import sys, json, celery_cli.cli; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
