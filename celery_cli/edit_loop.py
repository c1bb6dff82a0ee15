"""The edit loop of `tcel up --watch`: watch the project directory and reload the workers whenever a file that
goes into the worker image changes. Changes are gathered in the background, so those made during a reload
are coalesced into the next one."""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TcelError
from .output import Progress

if TYPE_CHECKING:
    from .stack.base import ReloadReport, Stack, UpOptions
    from .stack.worker_image import WorkerImage

# watchfiles hands over a batch once nothing more changed for this long: an editor's save (truncate and write,
# or write beside and rename) is one batch, and a reload starts within a few hundredths of a second of it.
QUIET_MS = 20


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
                self.directory,
                step=QUIET_MS,
                stop_event=self._stop,
                raise_interrupt=False,
                rust_timeout=200,
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
            with contextlib.suppress(queue.Empty):  # wakes up now and then for Ctrl-C
                changed |= self._take(self._batches.get(timeout=0.5))
        while not self._batches.empty():
            changed |= self._take(self._batches.get_nowait())
        return changed

    def _take(self, batch: set[Path] | BaseException) -> set[Path]:
        if isinstance(batch, BaseException):
            raise TcelError(f"cannot watch {self.directory}: {batch}", hint="run 'tcel up --watch' again")
        return batch


def image_files(image: WorkerImage) -> set[Path]:
    """The files that go into the worker image now, as .dockerignore (or tcel's default) selects them."""
    return {image.context / relative for relative in image.files()}


class ImageChanges:
    """Changes to the files of a project's worker image: what `.dockerignore` lets in, before or after the
    change (a deleted file counts, so does a .dockerignore that lets another file in or keeps one out)."""

    def __init__(self, image: WorkerImage) -> None:
        self.image = image
        self.project = image.project
        self.files = FileChanges(image.project.directory)
        self.watched: set[Path] = set()

    def __enter__(self) -> ImageChanges:
        self.files.__enter__()
        self.watched = image_files(self.image)
        return self

    def __exit__(self, *exc: object) -> None:
        self.files.__exit__(*exc)

    def next(self) -> list[str]:
        """Block until a file of the image changed; return every one that did since the last call, relative to
        the project directory."""
        while True:
            paths = self.files.wait()
            now = image_files(self.image)
            changed = sorted(self._relative(path) for path in paths & (self.watched | now))
            ignore = self.image.context / ".dockerignore"
            if now != self.watched and ignore in paths:
                changed.append(self._relative(ignore))
            self.watched = now
            if changed:
                return changed

    def _relative(self, path: Path) -> str:
        directory = self.project.directory
        return str(path.relative_to(directory)) if path.is_relative_to(directory) else str(path)


def reload(
    stack: Stack, changed: list[str], options: UpOptions, grace: float, ready_timeout: float, progress: Progress
) -> Reload | None:
    """One reload after `changed` files changed (none: to catch up with files saved before the watch began);
    None when there is nothing to tell (nothing changed and nothing replaced). A failed reload leaves the
    running workers serving, and tells why."""
    try:
        report = stack.reload_workers(options, grace, ready_timeout, progress)
    except TcelError as error:
        return Reload(changed, error=error)
    return Reload(changed, report=report) if changed or report.replaced else None
