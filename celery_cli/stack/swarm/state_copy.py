"""A copy of the project's state file in the swarm, so that its credentials outlive the file (see
containers/state_copy.py): a Docker config, not a secret, since Swarm gives back a config's data and never a
secret's. It is named `tcel-<project>-state-<digest of its text>` and labelled with the project and the role
`state`; configs cannot change, so a new text makes a new config and the older ones go. No service mounts it.
Anyone who can read it (any client of a swarm manager) can already run services on the swarm, which is as
privileged as the state file's owner. `down` keeps it with the data; `down --volumes` removes it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ... import credentials
from ...names import LABEL_SERVICE
from ...settings import Project
from ..containers.docker_api import volume_labels
from ..state_recovery import Copy, Recovered
from ..state_recovery import recovered as recovered_from
from .docker_api import Config, Service, config_copies, config_text

if TYPE_CHECKING:
    import docker

ROLE = "state"


def copy_name(project: Project, text: str) -> str:
    """The config that holds this text of the state file."""
    return f"tcel-{project.name}-{ROLE}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def newest(copies: list[Config]) -> Config | None:
    """The copy made last (by the swarm's clock), None for none."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(copies, key=lambda copy: (copy.created or oldest, copy.name), default=None)


def keep(client: docker.DockerClient, project: Project) -> None:
    """Copy the state file into a config (unless one holds this text already), then remove the older copies."""
    text = credentials.state_text(project)
    if text is None:
        return
    name = copy_name(project, text)
    copies = config_copies(client, project, ROLE)
    if name not in {copy.name for copy in copies}:
        client.configs.create(name=name, data=text.encode(), labels={**project.labels, LABEL_SERVICE: ROLE})
    for copy in copies:
        if copy.name != name:
            client.api.remove_config(copy.id)


def remove(client: docker.DockerClient, project: Project) -> list[str]:
    """Remove every copy (with the data, `down --volumes`); their names."""
    copies = config_copies(client, project, ROLE)
    for copy in copies:
        client.api.remove_config(copy.id)
    return sorted(copy.name for copy in copies)


def read(client: docker.DockerClient, project: Project) -> Copy | None:
    """The newest copy of the state file in the swarm; None without one."""
    found = newest(config_copies(client, project, ROLE))
    return Copy(config_text(client, found), f"Swarm config {found.name}") if found is not None else None


def recovered(client: docker.DockerClient, project: Project, existing: dict[str, Service]) -> Recovered | None:
    """For `up --swarm` without a state file: the newest copy's credentials, written back to the state file, and
    the note saying so. Without a copy, a stack whose broker or backend service runs, or whose data volumes are
    on this engine, is refused (a data node other than the manager keeps its volumes out of the manager's
    sight); nothing for a new stack."""
    running = [existing[kind].name for kind in ("broker", "backend") if kind in existing]
    volumes = [name for name in map(project.volume, ("broker", "backend")) if volume_labels(client, name) is not None]
    return recovered_from(project, running or volumes, lambda: read(client, project))
