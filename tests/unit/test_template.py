"""The worker files at the top of the repo are the ones tcel ships for projects without their own."""

import subprocess
import sys
import zipfile

import pytest

from celery_cli.settings import TEMPLATE_DIR
from tests.conftest import REPO

WORKER_FILES = ["Dockerfile", "tasks.py", "celeryconfig.py", "worker_hooks.py", ".dockerignore", "constraints.txt"]


@pytest.mark.parametrize("name", WORKER_FILES)
def test_the_shipped_template_links_to_the_repository_files(name: str) -> None:
    assert (TEMPLATE_DIR / name).is_symlink(), "one source: the template links to the top-level file"
    assert (TEMPLATE_DIR / name).resolve() == (REPO / name).resolve()


def test_a_built_wheel_carries_the_worker_files_and_builds_quietly(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "importable package" not in done.stdout + done.stderr  # every package is declared
    (wheel,) = tmp_path.glob("tcel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in WORKER_FILES:
            assert archive.read(f"celery_cli/template/{name}") == (REPO / name).read_bytes()


def test_worker_image_runs_celery_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    user_lines = [line for line in dockerfile if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    (command,) = [line for line in dockerfile if line.startswith("CMD ")]
    assert command.startswith('CMD ["celery"') and '"worker"' in command


def test_the_code_is_copied_last_and_requirements_before_it_with_the_constraints() -> None:
    steps = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    assert steps[-1].startswith("COPY ") and "tasks.py" in steps[-1], "a changed tasks.py rebuilds one layer"
    (install,) = [line for line in steps if "-r requirements.txt" in line]
    assert "-c constraints.txt" in install
    assert steps.index(install) < len(steps) - 1
    assert "!requirements.txt" in (REPO / ".dockerignore").read_text().splitlines()


def test_celeryconfig_reads_the_seeds_environment_variables(monkeypatch) -> None:
    import importlib.util

    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://u:p@broker:5672//")
    monkeypatch.setenv("CELERY_RESULT_BACKEND_URL", "redis://:p@backend:6379/0")
    spec = importlib.util.spec_from_file_location("celeryconfig_under_test", REPO / "celeryconfig.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.broker_url == "amqp://u:p@broker:5672//"
    assert module.result_backend == "redis://:p@backend:6379/0"
    assert module.accept_content == ["json"]
