"""The stack: one project's broker, backend and workers, behind one interface whichever engine runs them.

base.py says what every engine's stack does and holds the template of `up`; containers/ does it with plain
containers, swarm/ with Swarm services, each in modules of the same names (docker_api.py holds the Docker calls
and the typed views of what Docker returns, plan.py decides, up.py prepares and applies, readiness.py waits,
logs.py and status.py read; Swarm adds registry.py and rollout.py). Beside the interface, what both share:
specs.py describes each service, images.py pulls and builds, readiness.py waits until the stack answers,
ports.py chooses ports, rollback.py undoes, lock.py keeps one `up` or `down` at a time, docker_client.py
connects. choice.py says which engine runs a project; the stack is opened here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Project
    from .base import Stack


def open_stack(project: Project, engine: str | None = None) -> Stack:
    """The project's stack on the engine that runs it: plain containers, or Swarm services."""
    from .choice import engine_name

    if engine_name(project, engine) == "swarm":
        from .swarm.stack import SwarmStack

        return SwarmStack(project)
    from .containers.stack import ContainerStack

    return ContainerStack(project)
