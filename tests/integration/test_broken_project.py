"""A project directory with a broken tasks.py or Dockerfile: `tcel up` says which file, and exits non-zero."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_cli.settings import TEMPLATE_DIR


def worker_image_ids(engine) -> set[str]:
    return {image["Id"] for image in engine.api.images(filters={"label": "io.tcel.image=worker"})}


@pytest.fixture
def own_images(engine, project) -> Iterator[None]:
    """Remove the project's containers, then the worker images its test built (other tests' stay)."""
    import docker

    before = worker_image_ids(engine)
    yield
    project.remove_everything()
    for image_id in worker_image_ids(engine) - before:
        with contextlib.suppress(docker.errors.APIError):  # gone already, or used by another test's stack
            engine.images.remove(image_id, force=True)


def copy_template(directory: Path) -> None:
    for path in TEMPLATE_DIR.iterdir():
        if path.is_file():
            shutil.copy(path, directory / path.name)


def test_broken_tasks_py_is_named_with_its_line(project, own_images) -> None:
    copy_template(project.directory)
    tasks = project.directory / "tasks.py"
    tasks.write_text(tasks.read_text() + "\ndef broken(:\n")
    result = project.tcel("up", "--timeout", "60")
    assert result.code == 8
    last = result.stderr.strip().splitlines()[-1]
    assert "worker-1 exited" in last and "SyntaxError" in last
    assert f"{tasks} line" in last and "Traceback" not in result.stderr


def test_broken_dockerfile_is_named(project, own_images) -> None:
    copy_template(project.directory)
    dockerfile = project.directory / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER user", "RUN exit 3\nUSER user"))
    result = project.tcel("up")
    assert result.code == 7
    last = result.stderr.strip().splitlines()[-1]
    assert "building the worker image failed" in last and "RUN exit 3" in last
    assert str(dockerfile) in last
    assert project.containers() == []


@pytest.mark.parametrize(
    ("broker_url", "code", "told"),
    [  # the worker retries both for ever (a refused login too, since celeryconfig's broker_channel_error_retry)
        ('"amqp://tcel:wrong@broker:5672//"', 4, "cannot stay connected to the broker"),
        ('os.environ["CELERY_BROKER_URL"][:-1] + "novhost"', 4, "cannot stay connected to the broker"),
    ],
)
def test_a_worker_that_cannot_use_the_broker_is_named_with_its_own_error_line(
    project, own_images, broker_url: str, code: int, told: str
) -> None:
    import time

    copy_template(project.directory)
    config = project.directory / "celeryconfig.py"
    set_url = f'os.environ["CELERY_BROKER_URL"] = {broker_url}\n'  # Celery reads the variable before broker_url
    config.write_text(config.read_text().replace("broker_url = ", set_url + "broker_url = "))
    started = time.monotonic()
    result = project.tcel("up", "--ready-timeout", "120")
    assert result.code == code, result.stderr
    assert time.monotonic() - started < 60, "told at once, not after the whole timeout"
    last = result.stderr.strip().splitlines()[-1]
    assert "worker-1" in last and told in last and ("ACCESS_REFUSED" in last or "NOT_ALLOWED" in last)
    assert "wrong" not in last and "Traceback" not in result.stderr


def test_an_app_whose_workers_never_answer_is_not_remembered(project, own_images) -> None:
    """`up --app broken` fails; the next `up` without --app asks which app again instead of running it."""
    from celery_cli import credentials
    from celery_cli.settings import resolve_project

    for name, extra in (("jobs", ""), ("broken", "import no_such_module  # not in the image\n")):
        (project.directory / f"{name}.py").write_text(f"from celery import Celery\n{extra}app = Celery('{name}')\n")
    result = project.tcel("up", "--app", "broken", "--ready-timeout", "60")
    assert result.code == 8, result.stderr
    assert "no_such_module" in result.stderr.strip().splitlines()[-1]
    assert "TCEL_APP" not in credentials.kept(resolve_project(project.directory, project.name)), (
        "the app that never answered is forgotten"
    )
    again = project.tcel("up", "--ready-timeout", "60")
    assert again.code == 2, again.stderr
    assert "broken" in again.stderr and "jobs" in again.stderr and "--app" in again.stderr
