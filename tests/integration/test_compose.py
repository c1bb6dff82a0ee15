"""docker-compose.yml runs the same stack as `tcel up`: Compose v2 accepts it with tcel's env file, and a stack
started from it with `docker compose up --wait` (ready by its healthchecks) answers tcel's add and tsum."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO, free_port, run_tcel

COMPOSE_FILE = REPO / "docker-compose.yml"
IMAGE_KEYS = ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE")


@pytest.fixture(scope="module")
def compose(engine) -> str:
    """Compose v2's version; without it the tests skip, except in CI where they fail."""
    done = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if done.returncode != 0:
        message = f"docker compose (v2) is not installed: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return done.stdout.strip()


def configured_images() -> dict[str, str]:
    """The images tcel is configured with (environment, else the user's config file), as scripts/bench passes
    them to compose; unset ones keep the compose file's defaults, which are tcel's."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    images = {}
    config = Path(base) / "tcel" / "config.env"
    if config.is_file():
        for line in config.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key in IMAGE_KEYS:
                images[key] = value.strip().strip("'\"")
    images.update({key: os.environ[key] for key in IMAGE_KEYS if key in os.environ})
    return images


def docker_compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "compose", *args], capture_output=True, text=True, timeout=timeout)


def test_compose_accepts_the_file_with_tcels_env_file(compose, stack) -> None:
    env_file = Path(os.environ["XDG_STATE_HOME"]) / "tcel" / f"{stack.name}.env"
    assert env_file.is_file()
    done = docker_compose(
        "-p", f"{stack.name}config", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet"
    )
    assert done.returncode == 0, done.stderr


def test_stack_from_the_compose_file_answers_add_and_tsum(compose, engine, tmp_path: Path) -> None:
    name = f"tceltestcompose{uuid.uuid4().hex[:8]}"
    broker_password, backend_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    broker_port, backend_port = free_port(), free_port()
    env_file = tmp_path / "compose.env"
    env_file.write_text(
        "".join(
            f"{key}={value}\n"
            for key, value in {
                **configured_images(),
                "TCEL_BROKER_PASSWORD": broker_password,
                "TCEL_BACKEND_PASSWORD": backend_password,
                "TCEL_BROKER_PORT": broker_port,
                "TCEL_BACKEND_PORT": backend_port,
            }.items()
        )
    )
    # The worker image under a tag of this test's own, so that a tcel-compose-worker image someone built
    # before is neither used nor replaced.
    worker_image = f"tcel-compose-worker:{name}"
    override = tmp_path / "worker-image.yml"
    override.write_text(f"services:\n  worker:\n    image: {worker_image}\n")
    project = ["-p", name, "-f", str(COMPOSE_FILE), "-f", str(override), "--env-file", str(env_file)]
    urls = [
        "--broker-url",
        f"amqp://tcel:{broker_password}@127.0.0.1:{broker_port}//",
        "--backend-url",
        f"redis://:{backend_password}@127.0.0.1:{backend_port}/0",
    ]
    try:
        up = docker_compose(*project, "up", "--detach", "--wait", "--build")
        assert up.returncode == 0, up.stdout + up.stderr
        health = {
            c.name: c.attrs["State"]["Health"]["Status"]
            for c in engine.containers.list(filters={"label": f"com.docker.compose.project={name}"})
        }
        assert sorted(health.values()) == ["healthy"] * 3, health

        added = run_tcel("add", "2", "3", "--wait", "--timeout", "60", *urls)
        assert (added.code, added.stdout.strip()) == (0, "5"), added.stderr
        summed = run_tcel("tsum", "1", "2", "3", "--wait", "--timeout", "60", *urls)
        assert (summed.code, summed.stdout.strip()) == (0, "6"), summed.stderr
    finally:
        down = docker_compose(*project, "down", "--volumes", "--remove-orphans", "--timeout", "10")
        if down.returncode == 0:
            with contextlib.suppress(docker.errors.ImageNotFound):
                engine.images.remove(worker_image)
        assert down.returncode == 0, down.stderr
