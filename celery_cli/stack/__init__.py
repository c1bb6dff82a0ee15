"""The stack: one project's broker, backend and workers, behind one interface whichever engine runs them.

base.py says what every engine's stack does; containers.py does it with plain containers, swarm.py with
Swarm services (swarm_engine.py holds its docker-py calls). specs.py describes
each service's container, up.py plans and applies `up`, readiness.py waits until it works, logs.py reads
logs, lock.py keeps one `up` or `down` at a time, images.py pulls and builds, engine.py holds the docker-py
calls. The engine is chosen here, and only here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Project
    from .base import Stack


ENGINES = ("containers", "swarm")
WHAT_RUNS = {"containers": "plain containers", "swarm": "Swarm services"}


def engine_name(project: Project, asked: str | None = None) -> str:
    """Which engine runs the project's stack: the one asked for (`up --swarm`), else TCEL_ENGINE, else the one
    the project's state remembers from its last `up`, else plain containers."""
    import os

    from ..credentials import kept
    from ..errors import UsageError

    name = asked or os.environ.get("TCEL_ENGINE") or kept(project).get("TCEL_ENGINE") or "containers"
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r} (from TCEL_ENGINE)", hint=f"use one of {', '.join(ENGINES)}")
    return name


def open_stack(project: Project, engine: str | None = None) -> Stack:
    """The project's stack on the engine that runs it: plain containers, or Swarm services."""
    if engine_name(project, engine) == "swarm":
        from .swarm import SwarmStack

        return SwarmStack(project)
    from .containers import ContainerStack

    return ContainerStack(project)


def refuse_other_engine(
    project: Project, engine: str, elsewhere: list[str], command: str = "up", volumes: bool = False
) -> None:
    """Refuse `up` on `engine` while the project's stack has `elsewhere` (names) on the other engine: a second
    broker would start on the same named volume, and the state file would forget the stack that runs. Refuse
    `down` when only the other engine runs it: it would remove nothing and the stack would go on running."""
    from ..errors import UsageError

    if not elsewhere:
        return
    other = next(name for name in ENGINES if name != engine)
    down = "tcel down" if engine_name(project) == other else f"TCEL_ENGINE={other} tcel down"
    shown = ", ".join(elsewhere[:3]) + (", ..." if len(elsewhere) > 3 else "")
    if command == "up":
        hint = f"run '{down}' first (its data volumes are kept), then this 'up' again"
    else:
        hint = f"run '{down}{' --volumes' if volumes else ''}'"
    raise UsageError(
        f"stack {project.name} runs as {WHAT_RUNS[other]} on this Docker engine ({shown}), not as {WHAT_RUNS[engine]}",
        hint=hint,
    )
