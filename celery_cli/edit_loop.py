"""The edit loop of `tcel up --watch`: watch the project directory and reload the workers whenever a file that
goes into the worker image changes. Changes are gathered in the background, so those made during a reload
are coalesced into the next one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TcelError
from .output import Progress

if TYPE_CHECKING:
    from .settings import Project
    from .stack.base import ReloadReport, Stack, UpOptions

# watchfiles hands over a batch once nothing more changed for this long: an editor's save (write, rename,
# chmod) is one batch, and a reload starts within a twentieth of a second of it.
QUIET_MS = 50


@dataclass
class Reload:
    """One reload: which files changed, and what came of it (a report, or the error that stopped it)."""

    changed: list[str]  # relative to the project directory
    report: ReloadReport | None = None
    error: TcelError | None = None


class FileChanges:
    """Paths changed under a directory as watchfiles reports them, gathered by a thread of their own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._batches: queue.Queue[set[Path] | BaseException] = queue.Queue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tcel-file-changes", daemon=True)

    def __enter__(self) -> FileChanges:
        """Start watching; return once the watch is in place, so no change made afterwards is missed."""
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _watch(self) -> None:
        import watchfiles

        try:
            # an empty batch now and then (yield_on_timeout) tells that the watch is in place
            for changes in watchfiles.watch(
                self.directory, step=QUIET_MS, stop_event=self._stop, raise_interrupt=False, rust_timeout=200,
                yield_on_timeout=True,
            ):
                self._ready.set()
                if changes:
                    self._batches.put({Path(path) for _, path in changes})
        except Exception as exc:  # the directory went away, or the system's watch limit was reached
            self._batches.put(exc)
        finally:
            self._ready.set()

    def wait(self) -> set[Path]:
        """Block until something changed; return every path changed since the last call."""
        changed: set[Path] = set()
        while not changed:
            try:
                changed |= self._take(self._batches.get(timeout=0.5))  # wakes up now and then for Ctrl-C
            except queue.Empty:
                pass
        while not self._batches.empty():
            changed |= self._take(self._batches.get_nowait())
        return changed

    def _take(self, batch: set[Path] | BaseException) -> set[Path]:
        if isinstance(batch, BaseException):
            raise TcelError(f"cannot watch {self.directory}: {batch}", hint="run 'tcel up --watch' again")
        return batch


def image_files(project: Project) -> set[Path]:
    """The files that go into the worker image now, as .dockerignore selects them from the build context."""
    from .stack.images import context_files

    context = project.build_context
    return {context / relative for relative in context_files(context)}


def reloads(
    stack: Stack, options: UpOptions, grace: float, ready_timeout: float, changes: FileChanges, progress: Progress
) -> Iterator[Reload]:
    """Reload the workers after every change to the files of their image, for as long as the caller iterates
    (Ctrl-C ends it). A failed reload leaves the running workers serving, and the next change tries again."""
    project = stack.project
    watched = image_files(project)
    while True:
        progress(f"watching {project.directory} for changes")
        paths = changes.wait()
        now = image_files(project)
        changed = sorted(_relative(project, path) for path in paths & (watched | now))
        ignore = project.build_context / ".dockerignore"
        if now != watched and ignore in paths:  # it let another file in, or kept one out
            changed.append(_relative(project, ignore))
        watched = now
        if changed:
            progress(f"{', '.join(changed)} changed: reloading the workers")
            outcome = reload(stack, changed, options, grace, ready_timeout, progress)
            if outcome is not None:
                yield outcome


def reload(
    stack: Stack, changed: list[str], options: UpOptions, grace: float, ready_timeout: float, progress: Progress
) -> Reload | None:
    """One reload, after `changed` files changed (none: to catch up with files saved before watching began);
    None when it had nothing to say (nothing changed, nothing replaced)."""
    try:
        report = stack.reload_workers(options, grace, ready_timeout, progress)
    except TcelError as error:
        return Reload(changed, error=error)
    return Reload(changed, report=report) if changed or report.replaced else None


def _relative(project: Project, path: Path) -> str:
    return str(path.relative_to(project.directory)) if path.is_relative_to(project.directory) else str(path)
