"""One `up` or `down` at a time per project, across processes: a lock file in the user's state directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..settings import Project


@contextmanager
def project_lock(project: Project, create: bool = True) -> Iterator[None]:
    """Hold the project's lock for the block; without `create`, a missing state directory means no lock."""
    import fcntl

    if not create and not project.state_dir.is_dir():
        yield
        return
    project.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(project.state_dir / f"{project.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
