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
