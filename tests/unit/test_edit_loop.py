"""The edit loop's watching on a real directory with the real watchfiles (no engine needed): saves made while a
reload runs come back as one batch, and only files of the worker image count."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from celery_cli.edit_loop import ImageChanges
from celery_cli.project_files import write_project
from celery_cli.settings import Project
from celery_cli.stack.readiness import source_line
from celery_cli.stack.worker_image import worker_image

BUSY = 1.0  # a reload that takes a while: far longer than watchfiles' quiet period (0.02 s) between batches


def save(path: Path, text: str) -> None:
    """As an editor saves: written beside, then renamed over the file."""
    beside = path.with_name(f".{path.name}.saving")
    beside.write_text(text)
    os.replace(beside, path)


def next_within(changes: ImageChanges, seconds: float = 10) -> list[str]:
    """changes.next(), failing the test instead of blocking for ever when nothing comes."""
    found: list[list[str]] = []
    waiting = threading.Thread(target=lambda: found.append(changes.next()), daemon=True)
    waiting.start()
    waiting.join(seconds)
    assert found, f"no change reported within {seconds}s"
    return found[0]


def test_saves_made_while_a_reload_runs_come_back_as_one_batch_naming_every_file(tmp_path: Path) -> None:
    write_project(tmp_path)
    project = Project("coalesce", tmp_path)
    with ImageChanges(worker_image(project, None)) as changes:
        save(tmp_path / "tasks.py", (tmp_path / "tasks.py").read_text() + "\n# first save\n")
        assert next_within(changes) == ["tasks.py"]

        # the consumer is busy reloading: four saves of image files (one of them twice, one a new module)
        # and one of a file that is not in the image
        for name, text in (
            ("tasks.py", "# second\n"),
            ("celeryconfig.py", "# a setting\n"),
            ("requirements.txt", "inflection==0.5.1\n"),
            ("notes.txt", "not in the image\n"),
            ("helpers.py", "def helper():\n    return 1\n"),
            ("tasks.py", "# third\n"),
        ):
            path = tmp_path / name
            save(path, (path.read_text() if path.exists() else "") + text)
            time.sleep(0.1)  # each its own batch from watchfiles
        time.sleep(BUSY)
        assert next_within(changes) == ["celeryconfig.py", "helpers.py", "requirements.txt", "tasks.py"]

        # nothing of them is left over for the reload after: the next save comes back alone
        save(tmp_path / "worker_hooks.py", (tmp_path / "worker_hooks.py").read_text() + "\n# later\n")
        assert next_within(changes) == ["worker_hooks.py"]


def test_a_file_that_is_not_in_the_image_never_wakes_the_loop(tmp_path: Path) -> None:
    write_project(tmp_path)
    with ImageChanges(worker_image(Project("ignored", tmp_path), None)) as changes:
        save(tmp_path / "notes.txt", "a note\n")
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "tasks.cpython-312.pyc").write_bytes(b"\0")
        time.sleep(0.5)
        save(tmp_path / "helpers.py", "X = 1\n")
        assert next_within(changes) == ["helpers.py"]


def test_a_traceback_in_a_module_of_the_project_is_named_with_its_line(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "jobs.py").write_text("")
    log = [
        '  File "/home/user/tasks.py", line 4, in <module>',
        "    import mypkg.jobs",
        '  File "/home/user/mypkg/jobs.py", line 2, in <module>',
        "    import nowhere",
        '  File "/usr/local/lib/python3.12/site-packages/celery/app/base.py", line 10, in x',
        "ModuleNotFoundError: No module named 'nowhere'",
    ]
    assert source_line(Project("p", tmp_path), log) == f"{tmp_path / 'mypkg' / 'jobs.py'} line 2"
    assert source_line(Project("p", tmp_path), log[:2]) == f"{tmp_path / 'tasks.py'} line 4"


def test_ctrl_c_in_a_reload_says_where_every_worker_is(monkeypatch) -> None:
    """What the warning after Ctrl-C says; the engine's side (the cold stop, the dropped build) is in
    tests/integration/test_watch.py. A second Ctrl-C during the cold stop can only be made here."""
    from concurrent.futures import Future
    from types import SimpleNamespace

    from celery_cli.stack.containers import docker_api as engine
    from celery_cli.stack.containers import reload

    def old(hostname: str) -> SimpleNamespace:
        return SimpleNamespace(name=f"tcel-p-{hostname}-old-abc", hostname=hostname)

    stopped: list[list[str]] = []
    monkeypatch.setattr(engine, "stop_and_remove", lambda items: stopped.append([c.name for c in items]))
    done: Future[None] = Future()
    done.set_result(None)
    stopping = [(old("worker-1"), done), (old("worker-2"), Future())]  # worker-1's warm shutdown is over
    said = reload._cut_short("tcel-worker:new", ["worker-3"], ["worker-1", "worker-2"], stopping, 30, lambda _: None)
    assert said == (
        "interrupted during the reload: worker-1, worker-2 run tcel-worker:new; worker-3 still runs its "
        "old image ('tcel up' replaces it); the old worker-2 stopped without the rest of the 30s grace "
        "(running tasks went back to the queue)"
    )
    assert stopped == [["tcel-p-worker-2-old-abc"]]

    def interrupted(_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "stop_and_remove", interrupted)
    said = reload._cut_short("tcel-worker:new", [], ["worker-2"], stopping[1:], 30, lambda _: None)
    assert said.endswith(
        "the old worker-2 is still in a warm shutdown of up to 30s (tcel-p-worker-2-old-abc; 'tcel up' removes it)"
    )
    assert reload._cut_short("tcel-worker:new", [], [], [], 30, lambda _: None) == (
        "interrupted during the reload: every worker still runs its old image"
    )
