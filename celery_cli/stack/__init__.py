"""The stack: one project's broker, backend and workers, behind one interface whichever engine runs them.

base.py says what every engine's stack does; containers.py does it with plain containers. specs.py describes
each service's container, up.py plans and applies `up`, readiness.py waits until it works, logs.py reads
logs, lock.py keeps one `up` or `down` at a time, images.py pulls and builds, engine.py holds the docker-py
calls. The engine is chosen here, and only here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Project
    from .base import Stack


def open_stack(project: Project) -> Stack:
    """The project's stack on the engine that runs it (plain containers; Swarm services next)."""
    from .containers import ContainerStack

    return ContainerStack(project)
