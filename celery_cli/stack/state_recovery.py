"""Recovering a lost state file from the copy each engine keeps of it (plain containers in a volume,
containers/state_copy.py; Swarm in a config, swarm/state_copy.py): the note `up` gives when it did, and its
refusal when the stack has data and the engine no copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import credentials
from ..credentials import Credentials
from ..errors import TcelError
from ..settings import Project
from . import specs
from .base import UpOptions

RECOVERED = "the state file {file} was missing: its credentials were recovered from the copy in {where}"
NO_COPY = "the engine holds no copy of it"


@dataclass(frozen=True)
class Copy:
    """The text of an engine's copy of the state file, and what holds it as the user would name it."""

    text: str
    where: str  # "volume tcel-<project>-state-data", "Swarm config tcel-<project>-state-<digest>"


@dataclass(frozen=True)
class Recovered:
    credentials: Credentials
    note: str  # what `up` tells the user (RECOVERED)


def recovered(project: Project, data: list[str], read: Callable[[], Copy | None]) -> Recovered | None:
    """For `up` without a state file: the credentials of the engine's copy (`read` finds it), written back to the
    state file; None when there is no copy and the stack no `data` (a new stack). A stack with data (`data` names
    what holds it) and no copy with credentials is refused: new passwords would lock tcel out of that data."""
    copy = read()
    restored = credentials.restore_state(project, copy.text, copy.where) if copy is not None else None
    if copy is None or restored is None:
        if data:
            raise lost_state(project, data, NO_COPY)
        return None
    return Recovered(restored, RECOVERED.format(file=credentials.state_file(project), where=copy.where))


def lost_state(project: Project, data: list[str], why: str) -> TcelError:
    """What `up` says when the stack's data exists but its state file is gone and cannot be recovered (`why`)."""
    return TcelError(
        f"stack {project.name} keeps data in {', '.join(data)}, but its state file "
        f"{credentials.state_file(project)} is missing and {why}: new passwords would lock tcel out of that data",
        hint="restore the file from a backup, or run tcel as the user (HOME, XDG_STATE_HOME) that started the "
        "stack; only to start afresh, 'tcel down --volumes' deletes the data",
    )


def other_logins(project: Project, running: list[str], way_out: str) -> TcelError:
    """What `up` on Swarm and `scale` say when the running broker or backend (`running`: their names) were made
    with other logins than the state file's, such as a stack made before each service had its own user: the
    workers it would start could not log in. `way_out` keeps the data (the broker's definitions and the
    backend's users are read again at boot)."""
    what = " and ".join(running)
    return TcelError(
        f"stack {project.name}: {what} {'was' if len(running) == 1 else 'were'} made with other logins than "
        f"{credentials.state_file(project)} names (a stack made before each service had its own broker and "
        "backend user): its workers could not log in",
        hint=way_out,
    )


def refuse_other_logins(
    project: Project, options: UpOptions, access: Credentials, running: dict[str, dict[str, str]], way_out: str
) -> None:
    """Refuse a running broker or backend (`running`: the labels of each that runs, by kind) made with other
    logins than `access` gives, such as a stack made before each service had its own user: workers with the new
    logins could not log in to it. Each engine names its `way_out`."""
    wanted = {"broker": specs.broker, "backend": specs.backend}
    stale = [
        project.container(kind)
        for kind, make in wanted.items()
        if kind in running and specs.made_with_other_files(project, make(project, options, access), running[kind])
    ]
    if stale:
        raise other_logins(project, stale, way_out)
