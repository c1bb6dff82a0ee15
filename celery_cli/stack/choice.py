"""Which engine runs a project's stack (plain containers or Swarm services): chosen here, and only here, from the
option, TCEL_ENGINE, or what the project's state remembers; and the refusals when the stack runs on the other."""

from __future__ import annotations

from ..credentials import kept
from ..errors import UsageError
from ..settings import Project

ENGINES = ("containers", "swarm")
WHAT_RUNS = {"containers": "plain containers", "swarm": "Swarm services"}


def engine_name(project: Project, asked: str | None = None) -> str:
    """Which engine runs the project's stack: the one asked for (`up --swarm`), else TCEL_ENGINE, else the one
    the project's state remembers from its last `up`, else plain containers."""
    import os

    name = asked or os.environ.get("TCEL_ENGINE") or kept(project).get("TCEL_ENGINE") or "containers"
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r} (from TCEL_ENGINE)", hint=f"use one of {', '.join(ENGINES)}")
    return name


def refuse_other_engine(
    project: Project, engine: str, elsewhere: list[str], command: str = "up", volumes: bool = False
) -> None:
    """Refuse `up` on `engine` while the project's stack has `elsewhere` (names) on the other engine: a second
    broker would start on the same named volume, and the state file would forget the stack that runs. Refuse
    `down` when only the other engine runs it: it would remove nothing and the stack would go on running."""
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
