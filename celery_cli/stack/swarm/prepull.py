"""Pulling an image pinned by its digest once on every node before a service runs it: Docker 20.10 fails one of
two pulls by digest that start together on a node (`ref moby/1/unknown-sha256:... locked`), as two workers placed
on one node do; a node that holds the image already starts a task pinned by digest without pulling it at all. The
pull is a global service whose task on each node runs `true` once and is not restarted (one pull per node),
removed once every task is complete. Not a global job: Docker 20.10 never removes a job's tasks nor their
containers when the job is removed (moby/moby#42789, #44312), which left an exited container per node and pull."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from ...errors import ImageError
from ...names import LABEL_SERVICE
from ...output import Progress
from ...settings import Project
from ..docker_client import engine_errors
from . import docker_api
from .docker_api import Service

if TYPE_CHECKING:
    import docker

PREPULL_WAIT = 120.0


def prepull(
    client: docker.DockerClient, project: Project, image: str, constraints: list[str], progress: Progress
) -> None:
    """Pull `image` (pinned by digest, in a registry this engine's client is logged in to) on every node that
    takes tasks and meets `constraints`, one pull per node; fail with the nodes' errors when it cannot."""
    import docker
    import docker.types as types

    if "@" not in image:
        return  # a tag: every task pulls it anyway
    progress(f"pulling {image.rpartition('/')[2].partition('@')[0]} on every node")
    labels = {**project.labels, LABEL_SERVICE: "prepull"}
    with engine_errors():
        job = Service(
            client.services.create(
                image,
                command=["true"],  # not the image's entrypoint: the pull is the whole job
                name=project.container("prepull"),
                labels=labels,
                container_labels=labels,
                mode=types.ServiceMode("global"),
                constraints=constraints,
                restart_policy=types.RestartPolicy(condition="none"),
            )
        )
    try:
        _wait_done(client, job)
    finally:
        # not waiting for its tasks to leave: their containers have exited, and hold no network or volume
        with engine_errors(), contextlib.suppress(docker.errors.NotFound):
            job.raw.remove()


def _wait_done(client: docker.DockerClient, job: Service) -> None:
    """Wait until the job's task on every node it runs on is complete (Swarm makes a global service's tasks, one
    per eligible node, all at once); fail on a node whose task failed."""
    deadline = time.monotonic() + PREPULL_WAIT
    while True:
        with engine_errors():
            tasks = job.tasks()
        failed = [task for task in tasks if task.state in ("failed", "rejected")]
        if failed or time.monotonic() > deadline:
            names = docker_api.node_names(client)
            raise ImageError(
                "cannot pull the pushed image on every node ("
                + "; ".join(f"node {names.get(t.node_id, t.node_id)}: {t.error}" for t in failed or tasks)
                + ")",
                hint="see 'tcel logs registry-mirror' and 'tcel status'; run 'tcel up' again",
            )
        if tasks and all(task.state == "complete" for task in tasks):
            return
        time.sleep(0.3)
