"""A project directory with a broken tasks.py or Dockerfile: `tcel up` says which file, and exits non-zero."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_cli.settings import TEMPLATE_DIR


@pytest.fixture
def own_images(engine) -> Iterator[None]:
    """Remove the worker images a test built for its broken project."""
    before = {image.id for image in engine.images.list(filters={"label": "io.tcel.image=worker"})}
    yield
    for image in engine.images.list(filters={"label": "io.tcel.image=worker"}):
        if image.id not in before:
            engine.images.remove(image.id, force=True)


def copy_template(directory: Path) -> None:
    for name in ("Dockerfile", ".dockerignore", "celeryconfig.py", "tasks.py", "worker_hooks.py"):
        shutil.copy(TEMPLATE_DIR / name, directory / name)


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


def test_a_worker_that_cannot_use_the_broker_is_named_with_its_own_error_line(project, own_images) -> None:
    import time

    copy_template(project.directory)
    config = project.directory / "celeryconfig.py"
    config.write_text(config.read_text().replace(
        'broker_url = os.getenv("CELERY_BROKER_URL", "amqp://")', 'broker_url = "amqp://tcel:wrong@broker:5672//"'
    ))
    started = time.monotonic()
    result = project.tcel("up", "--ready-timeout", "120")
    assert result.code == 4, result.stderr
    assert time.monotonic() - started < 60, "told at once, not after the whole timeout"
    last = result.stderr.strip().splitlines()[-1]
    assert "worker-1 cannot stay connected to the broker" in last and "ACCESS_REFUSED" in last
    assert "wrong" not in last and "Traceback" not in result.stderr
