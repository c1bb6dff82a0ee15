"""A copy of the project's state file on the engine, so that its credentials outlive the file: the broker's
volume keeps the password it was made with, and a new one (another HOME, `sudo`, a lost ~/.local/state) would
lock every command out of the data. The copy is a file in a volume of its own, `tcel-<project>-state-data`,
mounted by no service: anyone who can read it can run containers on the engine, as privileged as the file's
owner. It is written and read through a container made for the moment and never started."""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

from ... import credentials
from ...errors import TcelError
from ...settings import Project
from ..state_recovery import Copy, Recovered
from ..state_recovery import recovered as recovered_from
from .docker_api import volume, volume_labels

if TYPE_CHECKING:
    import docker

SERVICE = "state"
MOUNT = "/tcel-state"
FILE = "state.env"


def recovered(client: docker.DockerClient, project: Project, image: str) -> Recovered | None:
    """For `up` without a state file: the copy's credentials, written back to the state file, and the note saying
    so; nothing for a stack without a copy or data; a stack with data and no copy is refused."""
    data = [project.volume(s) for s in ("broker", "backend") if volume_labels(client, project.volume(s)) is not None]
    return recovered_from(project, data, lambda: read(client, project, image))


def exists(client: docker.DockerClient, project: Project) -> bool:
    return volume_labels(client, project.volume(SERVICE)) is not None


def keep(client: docker.DockerClient, project: Project, image: str) -> None:
    """Copy the state file into the project's state volume (made if missing), readable by root only."""
    text = credentials.state_text(project)
    if text is None:
        return
    volume(client, project, SERVICE)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(FILE)
        member.size, member.mode = len(text.encode()), 0o600
        tar.addfile(member, io.BytesIO(text.encode()))
    carrier = _carrier(client, project, image)
    try:
        carrier.put_archive(MOUNT, archive.getvalue())
    finally:
        carrier.remove(force=True)


def read(client: docker.DockerClient, project: Project, image: str) -> Copy | None:
    """The copy of the state file on the engine; None without one."""
    import docker

    if not exists(client, project):
        return None
    carrier = _carrier(client, project, image)
    try:
        stream, _ = carrier.get_archive(f"{MOUNT}/{FILE}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(FILE)
            text = member.read().decode() if member else ""
    except docker.errors.NotFound:
        return None
    finally:
        carrier.remove(force=True)
    return Copy(text, f"volume {project.volume(SERVICE)}")


def _carrier(client: docker.DockerClient, project: Project, image: str) -> docker.models.containers.Container:
    """A container that mounts the state volume and is never started (the engine copies files in and out of a
    created container's volumes); no network, no label, removed by whoever made it."""
    import docker

    try:
        return client.containers.create(
            image,
            command=["true"],
            volumes={project.volume(SERVICE): {"bind": MOUNT, "mode": "rw"}},
            network_mode="none",
        )
    except docker.errors.ImageNotFound:
        raise TcelError(
            f"cannot reach the copy of stack {project.name}'s state on the engine: image {image} is missing",
            hint="pull it, or give the stack's --broker-image",
        ) from None
