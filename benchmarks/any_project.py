"""`tcel up` of a project tcel has never seen, side by side with Docker Compose v2 at its best.

The project is laid out as Celery's "Next Steps" guide lays it out: a package `proj/` whose `celery.py` holds
`app = Celery('proj', broker='amqp://', backend='rpc://', include=['proj.tasks'])`, a `requirements.txt`, and
no Dockerfile. tcel finds the app and generates the worker image; Compose gets what a user would write by hand
for the same project: a Dockerfile (dependencies in their own layer, a non-root user, `celery -A proj worker`)
and a compose file with cheap 2 s healthchecks (this repository's docker-compose.yml), then a ping loop so that
both sides end when the worker answers. Each round starts with no worker image of either side and an empty
build cache (`docker builder prune`: this benchmark clears the engine's build cache), the Python base image
present, so both install Celery from the package index and build from scratch. Only the images this benchmark
built are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from run import Bench

CELERY_PY = """\
from celery import Celery

app = Celery('proj', broker='amqp://', backend='rpc://', include=['proj.tasks'])
"""
TASKS_PY = """\
from .celery import app


@app.task
def add(x, y):
    return x + y
"""
REQUIREMENTS = "celery[redis]\n"
COMPOSE_IMAGE = "tcel-bench-any-project-compose"
IMAGE_KEYS = ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE")
DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}
RUN groupadd --system user && useradd --system --create-home --home-dir /home/user --gid user user
WORKDIR /home/user
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY proj ./proj
USER user
CMD ["celery", "-A", "proj", "worker", "--loglevel=INFO", "--without-mingle"]
"""


def write_project(directory: Path, compose: bool, run_id: str) -> None:
    (directory / "proj").mkdir(parents=True)
    (directory / "proj" / "__init__.py").write_text(f"# {run_id}: an image of this run's own\n")
    (directory / "proj" / "celery.py").write_text(CELERY_PY)
    (directory / "proj" / "tasks.py").write_text(TASKS_PY)
    (directory / "requirements.txt").write_text(REQUIREMENTS)
    if compose:
        (directory / "Dockerfile").write_text(DOCKERFILE)
        text = (Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text()
        text = text.replace("image: tcel-compose-worker", f"image: {COMPOSE_IMAGE}")
        text = text.replace(
            "CELERY_RESULT_BACKEND_URL: redis://", "CELERY_RESULT_BACKEND: redis://"
        )  # the project's own app reads Celery's variable, not the seed's
        (directory / "docker-compose.yml").write_text(text)


def any_project(bench: Bench) -> None:
    """Fresh `tcel up` (no worker image built) against `docker compose up --build --wait` + a ping loop."""
    import docker
    from run import REPO, TCEL, credentials, resolve_project, run, timed

    client = docker.from_env()
    tcel_dir, compose_dir = bench.directory / "anyproject", bench.directory / "anyproject-compose"
    write_project(tcel_dir, compose=False, run_id=bench.name)
    write_project(compose_dir, compose=True, run_id=bench.name)
    name = f"{bench.name}any"
    env = {**bench.ports, "TCEL_PROJECT_NAME": name}
    env_file = bench.directory / "any.env"
    compose = ["docker", "compose", "-p", f"{name}compose", "--env-file", str(env_file)]

    def tcel(*args: str, check: bool = True) -> str:
        return run([TCEL, *args], env=env, cwd=tcel_dir, check=check)

    existing = {image.id for image in client.images.list()}

    def no_worker_images() -> None:
        """Remove the worker images this benchmark built, and the build cache, so that each up builds anew."""
        for image in client.images.list():
            tagged = any(tag.startswith(("tcel-worker:", f"{COMPOSE_IMAGE}:")) for tag in image.tags)
            if tagged and image.id not in existing:
                client.images.remove(image.id, force=True)
        client.api.prune_builds()

    tcel("up")  # the stack's credentials and volumes exist before the first timed round; not timed
    tcel("down")
    access = credentials.load(resolve_project(tcel_dir, name)).with_ports("127.0.0.1", *bench.compose_ports)
    env_file.write_text(
        f"TCEL_BROKER_PASSWORD={access.broker_password}\nTCEL_BACKEND_PASSWORD={access.backend_password}\n"
        f"TCEL_BROKER_PORT={access.broker_port}\nTCEL_BACKEND_PORT={access.backend_port}\n"
        + "".join(f"{key}={os.environ[key]}\n" for key in IMAGE_KEYS if key in os.environ)
    )
    ping = {"CELERY_BROKER_URL": access.broker_url(), "CELERY_RESULT_BACKEND_URL": access.backend_url()}

    def compose_up() -> None:
        run([*compose, "up", "-d", "--build", "--wait"], cwd=compose_dir)
        run([sys.executable, str(REPO / "benchmarks" / "celery_client.py"), "ping", "celery@worker-1"], env=ping)

    ups: list[float] = []
    compose_ups: list[float] = []
    try:
        for n in range(bench.heavy_rounds):
            sides = [("tcel", ups), ("compose", compose_ups)]
            for side, times in sides if n % 2 == 0 else list(reversed(sides)):
                no_worker_images()
                if side == "tcel":
                    times.append(timed(lambda: tcel("up")))
                    tcel("down")
                else:
                    times.append(timed(compose_up))
                    run([*compose, "down"], cwd=compose_dir)
    finally:
        tcel("down", "--volumes", check=False)
        run([*compose, "down", "-v"], cwd=compose_dir, check=False)
        no_worker_images()
        shutil.rmtree(tcel_dir, ignore_errors=True)
        shutil.rmtree(compose_dir, ignore_errors=True)
    bench.row(
        "up of a new package-app project, no worker image built, until its worker answers",
        ups,
        compose_ups,
        "docker compose up --build --wait (hand-written Dockerfile) + ping loop",
        0.8,
    )


SINGLE_MODULE = """\
from celery import Celery

app = Celery("tasks", broker="amqp://", backend="rpc://")


@app.task
def add(x, y):
    return x + y


@app.task
def tsum(numbers):
    return sum(numbers)
"""
PLAIN_WORKER = "celery -A tasks worker --loglevel=INFO --without-mingle"


def worker_side(bench: Bench, count: int) -> None:
    """`tcel bench` completed/s on a project's own app with tcel's worker side (tcel_worker: the safe settings,
    the recent-task index, the report) against the same app run by a plain `celery -A tasks worker`
    (--worker-command), two stacks of one project, up in turn."""
    from run import TCEL, run

    directory = bench.directory / "workerside"
    directory.mkdir()
    (directory / "tasks.py").write_text(SINGLE_MODULE)
    sides = {
        "tcel": ({"TCEL_PROJECT_NAME": f"{bench.name}side"}, []),
        "plain": ({"TCEL_PROJECT_NAME": f"{bench.name}plain"}, ["--worker-command", PLAIN_WORKER]),
    }
    rates: dict[str, list[float]] = {"tcel": [], "plain": []}

    def tcel(side: str, *args: str, check: bool = True) -> str:
        return run([TCEL, *args], env={**bench.ports, **sides[side][0]}, cwd=directory, check=check)

    try:
        for n in range(bench.heavy_rounds * 2):
            for side in ("tcel", "plain") if n % 2 == 0 else ("plain", "tcel"):
                tcel(side, "up", *sides[side][1])
                tcel(side, "bench", "-n", "200")  # warm-up: pools forked, queues declared
                rates[side].append(json.loads(tcel(side, "bench", "-n", str(count), "--json"))["completed_per_second"])
                tcel(side, "down")
    finally:
        for side in sides:
            tcel(side, "down", "--volumes", check=False)
        shutil.rmtree(directory, ignore_errors=True)
    bench.row(
        "tcel bench completed/s with tcel's worker side",
        rates["tcel"],
        rates["plain"],
        "the same app under plain 'celery -A tasks worker' (--worker-command)",
        1 / 0.95,
        unit="/s",
    )
