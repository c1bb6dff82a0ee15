"""The foreground part of `tcel up --watch`: run the edit loop and print one line per reload."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from ..output import Output

if TYPE_CHECKING:
    from ..edit_loop import Reload
    from ..stack.base import Stack, UpOptions
    from ..stack.worker_image import WorkerImage


def watch_and_reload(out: Output, stack: Stack, options: UpOptions, grace: float, ready_timeout: float) -> None:
    """Reload the workers on every change to their files until Ctrl-C, which leaves the stack up."""
    from ..edit_loop import ImageChanges, reload
    from ..stack.base import ReloadInterrupted

    def reload_and_show(changed: list[str]) -> None:
        doing = f"{', '.join(changed)} changed: reloading the workers" if changed else "checking files saved during up"
        with out.status(doing) as progress:
            outcome = reload(stack, changed, options, grace, ready_timeout, progress)
        if outcome is not None:
            _show(out, outcome)

    from ..stack.worker_image import worker_image

    project = stack.project
    image = worker_image(project, options.app, options.worker_command)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a `kill` ends the watch as Ctrl-C does
    try:
        with ImageChanges(image) as changes:
            reload_and_show([])  # in case a file was saved while `up` ran
            _announce(out, image)
            while True:
                reload_and_show(changes.next())
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, ReloadInterrupted):
            out.warn(interrupt.state)
        out.info(f"stopped watching; stack {project.name} is still up ('tcel down' stops it)")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _announce(out: Output, image: WorkerImage) -> None:
    from ..edit_loop import image_files

    project = image.project
    if image.context == project.directory:
        paths = sorted(str(path.relative_to(project.directory)) for path in image_files(image))
        files = ", ".join(paths[:12]) + (f" and {len(paths) - 12} more" if len(paths) > 12 else "")
        out.info(f"watching {project.directory}: a change to {files} reloads the workers (Ctrl-C stops watching)")
    else:
        out.info(
            f"watching {project.directory}: it has no Celery app, so the workers run tcel's template until it "
            "has one and 'tcel up' runs again ('tcel init' writes a project to edit); Ctrl-C stops watching"
        )


def _show(out: Output, outcome: Reload) -> None:
    changed = f"{', '.join(outcome.changed)} changed" if outcome.changed else "files changed during 'up'"
    if outcome.error is not None:
        if out.json_mode:
            out.json_line({"changed": outcome.changed, "reloaded": False, "error": outcome.error.message})
        else:
            out.warn(f"{changed}, reload failed, the running workers go on serving: {outcome.error.message}")
        return
    r = outcome.report
    assert r is not None, "a reload that did not fail has its report"
    if out.json_mode:
        out.json_line({"changed": outcome.changed, "reloaded": True, **r.as_dict()})
    elif not r.replaced:
        out.info(f"{changed}: the workers already run {r.image}, nothing to reload")
    else:
        build = f"rebuilt in {r.build_seconds:.1f}s" if r.built else "image already built"
        workers = [name for name in r.replaced if not name.endswith("-beat")]
        beat = " and the beat" if len(workers) < len(r.replaced) else ""
        out.success(
            f"{changed}: {build}, {len(workers)} worker(s){beat} replaced in {r.replace_seconds:.1f}s, now {r.image}"
        )
