"""`tcel up --watch` and `tcel init` on the real engine: a watch session picks up a new task and an edited module
that tasks.py imports, survives a broken tasks.py (syntax or import error) with the old workers answering,
installs a dependency added to requirements.txt, loses no task running during a reload, and ends at once on
Ctrl-C during a build or a grace; a project from `tcel init` comes up and runs its own task."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_cli.stack.images import image_exists
from tests.conftest import REPO, StackProject, run_tcel

UP_TIMEOUT = 240  # the first `up` of a project may build its worker image
RELOAD_TIMEOUT = 180  # a change to requirements.txt installs from the package index
RELOADED = re.compile(r"changed: .* worker\(s\) replaced in [\d.]+s, now (tcel-worker:\w+)")


class WatchSession:
    """`tcel up --watch` running in the background, its stderr read line by line as it comes."""

    def __init__(self, project: StackProject, *args: str, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery_cli", "up", "--watch", "--project-name", project.name, *args],
            cwd=project.directory,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300", **project.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self._new.put(line.rstrip("\n"))
        self._new.put(None)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """The first line from now on that matches; fails with every line seen so far if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout}s; stderr so far:\n" + "\n".join(self.lines))
            if line is None:
                pytest.fail(
                    f"tcel up --watch exited ({self.process.wait()}) before {pattern!r}:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def watch(project: StackProject, engine) -> Iterator:
    """Start `tcel up --watch` on the test's project (a fresh `tcel init` project); killed, and the worker images
    its reloads built removed, whatever happens. The project's containers go with the `project` fixture."""
    assert run_tcel("init", str(project.directory)).code == 0
    sessions: list[WatchSession] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WatchSession:
        session = WatchSession(project, *args, env=env)
        sessions.append(session)
        session.wait_for(r"^watching ", UP_TIMEOUT)
        return session

    try:
        yield start
    finally:
        for session in sessions:
            session.kill()
        project.remove_everything()
        built = {m.group(1) for s in sessions for line in s.lines if (m := RELOADED.search(line))}
        for image in built:  # named after this test's own edits: no other project has them
            with contextlib.suppress(Exception):
                engine.images.remove(image)


def running(command: tuple[str, ...]) -> bool:
    """Whether a process with exactly this command line runs on this machine."""
    wanted = b"\0".join(arg.encode() for arg in command) + b"\0"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == wanted:
                return True
        except OSError:  # it ended meanwhile
            pass
    return False


def celery_client(project: StackProject):
    from celery import Celery

    access = project.connection
    app = Celery("test_watch", broker=access.broker_url(), backend=access.backend_url(), set_as_current=False)
    app.conf.update(broker_connection_retry_on_startup=False)
    return app


def worker_containers(project: StackProject) -> list:
    return [c for c in project.containers() if c.labels.get("io.tcel.service") == "worker"]


def save(path: Path, text: str) -> None:
    """Save as editors do, in one step (written beside, then renamed): a test that truncated and wrote in
    place could see a reload of the empty file in between."""
    beside = path.with_name(f".{path.name}.saving")
    beside.write_text(text)
    os.replace(beside, path)


def add_task(project: StackProject, code: str) -> None:
    tasks = project.directory / "tasks.py"
    save(tasks, tasks.read_text() + "\n\n" + code)


def test_a_new_task_is_picked_up_and_served(project, watch) -> None:
    session = watch()
    known = project.tcel("call", "tasks.tsum", "[1, 2]", "--wait", "--timeout", "30")  # tcel caches the names
    assert (known.code, known.stdout.strip()) == (0, "3"), known.stderr
    tasks = project.directory / "tasks.py"
    save(tasks, tasks.read_text().replace("def add(x, y):", "def mul(x, y):").replace("return x + y", "return x * y"))
    reloaded = session.wait_for(RELOADED, RELOAD_TIMEOUT)
    assert "tasks.py changed: rebuilt in" in session.lines[-1]
    gone = project.tcel("call", "tasks.add", "1", "2")
    assert gone.code == 2 and "tasks.add" in gone.stderr, "the reload made tcel forget the old task names"
    done = project.tcel("call", "tasks.mul", "6", "7", "--wait", "--timeout", "30")
    assert (done.code, done.stdout.strip()) == (0, "42"), done.stderr
    (worker,) = worker_containers(project)
    assert worker.name == f"tcel-{project.name}-worker-1" and worker.attrs["Config"]["Image"] == reloaded.group(1)
    assert project.tcel("logs", "worker-1", "--tail", "50").code == 0, "worker-1 still names the reloaded worker"


def test_a_syntax_or_import_error_keeps_the_old_workers_serving_until_the_next_good_save(project, watch) -> None:
    session = watch()
    tasks = project.directory / "tasks.py"
    good = tasks.read_text()
    (before,) = worker_containers(project)
    save(tasks, good + "\n\ndef broken(:\n    pass\n")
    broken_line = len(good.splitlines()) + 3
    failed = session.wait_for(r"reload failed", RELOAD_TIMEOUT).string
    assert "SyntaxError" in failed and f"{tasks} line {broken_line}" in failed, failed
    assert "running workers go on serving" in failed
    (after,) = worker_containers(project)
    assert (after.id, after.name, after.status) == (before.id, before.name, "running")
    done = project.tcel("tsum", "1", "2", "--wait", "--timeout", "30")
    assert (done.code, done.stdout.strip()) == (0, "3"), done.stderr

    # an import that fails when the worker loads tasks.py: named with its line too, the old worker serving
    save(tasks, good.replace("\nimport time\n", "\nimport time\nimport tcel_no_such_module\n", 1))
    import_line = good.splitlines().index("import time") + 2
    failed = session.wait_for(r"reload failed", RELOAD_TIMEOUT).string
    assert "ModuleNotFoundError" in failed and "tcel_no_such_module" in failed, failed
    assert f"{tasks} line {import_line}" in failed, failed
    (after,) = worker_containers(project)
    assert (after.id, after.name, after.status) == (before.id, before.name, "running")
    done = project.tcel("tsum", "2", "3", "--wait", "--timeout", "30")
    assert (done.code, done.stdout.strip()) == (0, "5"), done.stderr

    save(tasks, good + "\n\n@app.task\ndef neg(x):\n    return -x\n")
    session.wait_for(RELOADED, RELOAD_TIMEOUT)
    app = celery_client(project)
    try:
        assert app.send_task("tasks.neg", args=[5]).get(timeout=30) == -5
    finally:
        app.close()

    assert session.interrupt() == 0
    session.wait_for(rf"^stopped watching; stack {project.name} is still up", 10)
    assert len(project.containers()) == 3 and all(c.status == "running" for c in project.containers())


def test_a_module_tasks_py_imports_is_served_and_editing_only_it_reloads(project, watch) -> None:
    helpers = project.directory / "helpers.py"
    helpers.write_text('def greeting(name):\n    return f"hello {name}"\n')
    tasks = project.directory / "tasks.py"
    celery = "from celery import Celery\n"
    imported = tasks.read_text().replace(celery, celery + "\nimport helpers\n", 1)
    tasks.write_text(imported + "\n\n@app.task\ndef greet(name):\n    return helpers.greeting(name)\n")
    session = watch()
    assert "helpers.py" in session.lines[-1], "the watch names the module among the image's files"
    app = celery_client(project)
    try:
        assert app.send_task("tasks.greet", args=["tcel"]).get(timeout=30) == "hello tcel"
        save(helpers, 'def greeting(name):\n    return f"goodbye {name}"\n')
        session.wait_for(RELOADED, RELOAD_TIMEOUT)
        assert "✔ helpers.py changed: rebuilt in" in session.lines[-1], session.lines[-1]  # and nothing else
        assert app.send_task("tasks.greet", args=["tcel"]).get(timeout=30) == "goodbye tcel"
    finally:
        app.close()


def test_a_failing_build_names_its_step_and_keeps_the_old_workers(project, watch) -> None:
    session = watch()
    (before,) = worker_containers(project)
    save(project.directory / "requirements.txt", "tcel-no-such-package-anywhere==1.0\n")
    failed = session.wait_for(r"reload failed", RELOAD_TIMEOUT).string
    assert "requirements.txt changed" in failed and "building the worker image failed at" in failed
    assert "pip install" in failed and "tcel-no-such-package-anywhere" in failed, failed
    (after,) = worker_containers(project)
    assert (after.id, after.status) == (before.id, "running")
    done = project.tcel("tsum", "4", "5", "--wait", "--timeout", "30")
    assert (done.code, done.stdout.strip()) == (0, "9"), done.stderr


def test_a_dependency_added_to_requirements_is_installed_in_a_layer_of_its_own(project, watch, engine) -> None:
    session = watch()
    save(project.directory / "requirements.txt", "inflection==0.5.1\n")
    with_dependency = session.wait_for(RELOADED, RELOAD_TIMEOUT).group(1)
    assert "requirements.txt changed" in session.lines[-1]
    old_layers = engine.images.get(with_dependency).attrs["RootFS"]["Layers"]  # removed once no worker runs it
    add_task(project, "@app.task\ndef camel(word):\n    import inflection\n\n    return inflection.camelize(word)\n")
    with_task = session.wait_for(RELOADED, RELOAD_TIMEOUT).group(1)
    app = celery_client(project)
    try:
        assert app.send_task("tasks.camel", args=["edit_loop"]).get(timeout=30) == "EditLoop"
    finally:
        app.close()
    # the tasks.py change rebuilt the code's layer (and tcel's worker side above it) only: every layer below it,
    # the installed dependency's among them, is the one the requirements.txt change made
    new_layers = engine.images.get(with_task).attrs["RootFS"]["Layers"]
    assert new_layers[:-2] == old_layers[:-2] and new_layers[-2] != old_layers[-2]


@pytest.mark.parametrize("grace", [1, 30])
def test_no_task_running_during_a_reload_is_lost(project, watch, grace: int) -> None:
    session = watch("--grace", str(grace), env={"TCEL_ADD_DELAY": "8"})
    app = celery_client(project)
    try:
        sent = [app.send_task("tasks.add", args=[n, 1000]) for n in range(8)]
        deadline = time.monotonic() + 30
        while not all(r.state == "STARTED" for r in sent):
            assert time.monotonic() < deadline, [r.state for r in sent]
            time.sleep(0.1)
        add_task(project, "# a change while eight tasks run")
        session.wait_for(RELOADED, RELOAD_TIMEOUT)
        results = [r.get(timeout=60) for r in sent]
        # the worker that started each last, from tcel's index (results carry no worker: no extended results)
        workers = {app.backend.client.hget(f"tcel:task:{r.id}", "worker").decode() for r in sent}
    finally:
        app.close()
    print(f"WATCH grace {grace}s: sent {len(sent)}, came back {len(results)}, run last by {sorted(workers)}")
    assert results == [n + 1000 for n in range(8)]
    if grace == 30:  # time enough: they finished on the old worker
        assert workers == {"celery@worker-1"}
    else:  # cut short: back to the queue, and run again by the new worker
        assert len(workers) == 1 and workers.pop().startswith("celery@worker-1-")


def test_ctrl_c_during_a_build_or_a_grace_ends_at_once_and_says_where_the_workers_are(project, watch, engine) -> None:
    """Neither the build nor the old worker's grace holds Ctrl-C up: the build is dropped (the workers keep
    their image), and a worker in its warm shutdown is stopped cold (its task goes back to the queue)."""
    from celery_cli.settings import Project, setting
    from celery_cli.stack.worker_image import worker_image

    env = {"TCEL_ADD_DELAY": "20"}
    dockerfile = project.directory / "Dockerfile"
    good = dockerfile.read_text()
    session = watch("--grace", "60", env=env)
    (before,) = worker_containers(project)
    # a command line no other test runs, new on each run: a layer cached by an earlier run (one interrupted
    # before it could remove its image, say) would skip the step, and the build with it
    slow_step = ("sleep", f"15.{uuid.uuid4().int % 10**6:06d}")
    save(dockerfile, good.replace("\nCOPY . ./", f"\nRUN {' '.join(slow_step)}\nCOPY . ./"))
    slow_image = worker_image(Project(project.name, project.directory), None).name(setting("TCEL_PYTHON_IMAGE"))
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while not running(slow_step):  # the build's step runs on this machine's engine, so in its process table
        assert time.monotonic() < deadline, "the build never reached its slow step:\n" + "\n".join(session.lines)
        time.sleep(0.1)
    interrupted = time.monotonic()
    assert session.interrupt(timeout=30) == 0
    assert time.monotonic() - interrupted < 10, "Ctrl-C waited for the build"
    deadline = time.monotonic() + 10
    while running(slow_step):
        assert time.monotonic() < deadline, "the engine went on with the build tcel dropped"
        time.sleep(0.1)
    told = session.wait_for(r"^warning: interrupted", 5).string
    assert f"while building {slow_image}: every worker still runs its old image" in told, told
    session.wait_for(rf"^stopped watching; stack {project.name} is still up", 5)
    (after,) = worker_containers(project)
    assert (after.id, after.status) == (before.id, "running")
    save(dockerfile, good)

    session = watch("--grace", "60", env=env)
    app = celery_client(project)
    new_image = None
    try:
        long_task = app.send_task("tasks.add", args=[20, 1])
        deadline = time.monotonic() + 30
        while long_task.state != "STARTED":
            assert time.monotonic() < deadline, long_task.state
            time.sleep(0.1)
        add_task(project, "# a change while a 20 s task runs")
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while not [c for c in project.containers() if "-old-" in c.name and b"arm shutdown" in c.logs()]:
            assert time.monotonic() < deadline, "the old worker never began its warm shutdown"
            time.sleep(0.2)
        interrupted = time.monotonic()
        assert session.interrupt(timeout=60) == 0
        assert time.monotonic() - interrupted < 10, "Ctrl-C waited for the old worker's 60 s grace"
        told = session.wait_for(r"^warning: interrupted", 5).string
        found = re.search(
            r"during the reload: worker-1 runs (tcel-worker:\w+); the old worker-1 stopped without the "
            r"rest of the 60s grace",
            told,
        )
        assert found, told
        new_image = found.group(1)
        session.wait_for(rf"^stopped watching; stack {project.name} is still up", 5)
        # one worker, the new one under its own name; nothing left stopping
        (worker,) = worker_containers(project)
        assert (worker.name, worker.status) == (f"tcel-{project.name}-worker-1", "running")
        assert worker.attrs["Config"]["Image"] == new_image
        assert long_task.get(timeout=60) == 21, "the task cut short went back to the queue and ran again"
        slow_built = image_exists(engine, slow_image)  # its build would have ended long ago
    finally:
        app.close()
        project.remove_everything()
        for image in (slow_image, new_image):
            if image is not None and image_exists(engine, image):
                engine.images.remove(image)
    assert not slow_built, "the engine finished the build tcel dropped"


def test_init_then_up_runs_a_task(project, tmp_path: Path) -> None:
    from celery_cli.settings import Project, setting
    from celery_cli.stack.worker_image import worker_image

    fresh = tmp_path / "made-by-init"
    assert run_tcel("init", str(fresh), cwd=REPO).code == 0
    # a task only this project has: served only if `up` built the workers from the files init wrote
    add_task(StackProject(project.name, fresh, project.engine), "@app.task\ndef made_by_init():\n    return 4242\n")
    made = StackProject(project.name, fresh, project.engine, project.env)
    own_image = worker_image(Project(project.name, fresh), None).name(setting("TCEL_PYTHON_IMAGE"))
    up = made.tcel("up")
    try:
        assert up.code == 0, up.stderr
        (worker,) = worker_containers(made)
        assert worker.attrs["Config"]["Image"] == own_image
        done = made.tcel("tsum", "1", "2", "3", "--wait", "--timeout", "30")
        assert (done.code, done.stdout.strip()) == (0, "6"), done.stderr
        own = made.tcel("call", "tasks.made_by_init", "--wait", "--timeout", "30")
        assert (own.code, own.stdout.strip()) == (0, "4242"), own.stderr
    finally:
        made.remove_everything()
        with contextlib.suppress(Exception):  # this test's own tasks.py made it: no other project has it
            project.engine.images.remove(own_image)
