"""Recovering a lost state file from the copy each engine keeps of it (plain containers in a volume,
containers/state_copy.py; Swarm in a config, swarm/state_copy.py): the note `up` gives when it did, and its
refusal when the stack has data and the engine no copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import credentials
from ..credentials import Credentials
from ..settings import Project

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
            raise credentials.lost_state(project, data, NO_COPY)
        return None
    return Recovered(restored, RECOVERED.format(file=credentials.state_file(project), where=copy.where))
