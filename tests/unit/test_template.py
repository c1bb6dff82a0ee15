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
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "importable package" not in done.stdout + done.stderr  # every package is declared
    (wheel,) = tmp_path.glob("tcel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in WORKER_FILES:
            assert archive.read(f"celery_cli/template/{name}") == (REPO / name).read_bytes()
        shipped = set(archive.namelist())
    package = REPO / "celery_cli"
    files = {path.relative_to(REPO).as_posix() for path in package.rglob("*") if path.is_file()}
    missing = {name for name in files if "__pycache__" not in name} - shipped
    assert not missing, "the wheel lacks files of the package"  # such as stack/flower_image/'s Dockerfile


def test_worker_image_runs_celery_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    user_lines = [line for line in dockerfile if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")
    (command,) = [line for line in dockerfile if line.startswith("CMD ")]
    assert command.startswith('CMD ["celery"') and '"worker"' in command


def test_the_code_is_copied_last_and_requirements_before_it_with_the_constraints() -> None:
    steps = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    # everything .dockerignore lets in, last: a changed tasks.py (or helpers.py) rebuilds one layer
    assert steps[-1] == "COPY . ./"
    (install,) = [line for line in steps if "-r requirements.txt" in line]
    assert "-c constraints.txt" in install
    assert steps.index(install) < len(steps) - 1
    assert "!requirements.txt" in (REPO / ".dockerignore").read_text().splitlines()


def test_the_repository_root_sends_only_the_worker_files_into_the_image() -> None:
    """The compose file builds from the repository root: celery_cli/, tests/ and benchmarks/ stay out."""
    from celery_cli.stack.images import context_files

    expected = [".dockerignore", "Dockerfile", "celeryconfig.py", "constraints.txt", "tasks.py", "worker_hooks.py"]
    assert context_files(REPO) == expected
    assert context_files(TEMPLATE_DIR) == expected


def test_a_project_s_own_modules_go_into_the_image_and_a_package_once_dockerignore_names_it(tmp_path) -> None:
    from celery_cli.project_files import write_project
    from celery_cli.stack.images import context_files

    write_project(tmp_path)
    for name in (
        "helpers.py",
        "mypkg/__init__.py",
        "mypkg/jobs.py",
        "mypkg/__pycache__/jobs.cpython-312.pyc",
        "__pycache__/tasks.cpython-312.pyc",
        "notes.txt",
        "tests/test_tasks.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert context_files(tmp_path) == [
        ".dockerignore",
        "Dockerfile",
        "celeryconfig.py",
        "constraints.txt",
        "helpers.py",
        "requirements.txt",
        "tasks.py",
        "worker_hooks.py",
    ]
    ignore = tmp_path / ".dockerignore"
    lines = ignore.read_text().splitlines()
    lines.insert(lines.index("!*.py") + 1, "!mypkg/")  # as docs/usage.md says
    ignore.write_text("\n".join(lines) + "\n")
    assert "mypkg/jobs.py" in context_files(tmp_path) and "mypkg/__init__.py" in context_files(tmp_path)
    assert not [name for name in context_files(tmp_path) if "__pycache__" in name or name.startswith("tests/")]


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
