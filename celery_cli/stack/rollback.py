"""Undoing a change made in several steps (`up` on either engine, a worker reload): each step that makes
something registers how to undo it; when the change fails or is interrupted, the steps run newest first."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType


class Rollback:
    """Undo steps, run newest first when the block raises (Ctrl-C too). A step that fails (what it undoes is
    gone already, the engine refused or went away) does not stop the others, nor hide the error that made the
    change fail. `keep()` forgets the steps so far: what they made stays even if a later step fails."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], object]] = []

    def add(self, step: Callable[[], object]) -> None:
        self.steps.append(step)

    def keep(self) -> None:
        self.steps.clear()

    def undo(self) -> None:
        steps, self.steps = self.steps, []
        for step in reversed(steps):
            with contextlib.suppress(Exception):
                step()

    def __enter__(self) -> Rollback:
        return self

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error_type is not None:
            self.undo()
