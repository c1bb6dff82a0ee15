"""The edit loop, side by side: from saving tasks.py to the first task served by the new code, with
`tcel up --watch` and with Compose v2's `docker compose watch` (`develop.watch` with a `rebuild` action, and
with `sync+restart`). Each side runs on its own copy of one `tcel init` project, with its own stack and its
own watcher; a round saves each side's tasks.py in turn (the order rotates), each time with a `tsum` that
returns something no earlier save returned, and a client sends `tsum` every 50 ms until one comes back from
the new code. Only the side being timed runs: the others' containers are paused meanwhile.
"""

from __future__ import annotations

import itertools
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TCEL = str(BIN / "tcel")
SEND_EVERY = 0.05
ROUND_TIMEOUT = 180
IMAGE_KEYS = ("TCEL_BROKER_IMAGE", "TCEL_BACKEND_IMAGE", "TCEL_PYTHON_IMAGE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Watcher:
    """One side: a project directory, its stack, and a watcher process whose output is read line by line."""

    name: str

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.app = None

    def launch(self, command: list[str], env: dict[str, str], ready: str) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            env={**os.environ, **env},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(ready, 600)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(
                    f"{self.name}: no {text!r} within {timeout}s:\n" + "\n".join(self.seen[-30:])
                ) from None
            if line is None:
                raise SystemExit(f"{self.name}: the watcher exited before {text!r}:\n" + "\n".join(self.seen[-30:]))
            self.seen.append(line)
            if text in line:
                return line

    def connect(self, broker_url: str, backend_url: str) -> None:
        from celery import Celery

        self.app = Celery("edit-loop-bench", broker=broker_url, backend=backend_url, set_as_current=False)
        deadline = time.monotonic() + 180
        while True:  # the stack answers before the first round (compose's watch does not wait for it)
            try:
                self.app.send_task("tasks.tsum", args=[[1, 2]]).get(timeout=60)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def save_and_time(self, base: str, mark: int) -> float:
        """Save a tasks.py whose tsum adds a new mark; seconds until a tsum comes back with it."""
        expected = 3 + mark
        text = base.replace("    return sum(numbers)", f"    return sum(numbers) + {mark}")
        assert text != base
        text += f"# {uuid.uuid4()}\n"  # contents no build cache has seen, from this run or an earlier one
        beside = self.directory / ".tasks.py.saving"
        beside.write_text(text)
        started = time.perf_counter()
        os.replace(beside, self.directory / "tasks.py")  # saved in one step, as editors do
        pending = []
        while time.perf_counter() - started < ROUND_TIMEOUT:
            pending.append(self.app.send_task("tasks.tsum", args=[[1, 2]]))
            time.sleep(SEND_EVERY)
            # the queue is first in, first out: look at the oldest few and the newest
            for result in {id(r): r for r in pending[:5] + pending[-1:]}.values():
                if result.ready():
                    pending.remove(result)
                    if result.result == expected:
                        return time.perf_counter() - started
        raise SystemExit(f"{self.name}: no tsum from the new code within {ROUND_TIMEOUT}s")

    def settle(self) -> None:
        """Wait until the side is done with the save (its old worker gone)."""

    label: str  # the label on every container of the side's stack

    def freeze(self, frozen: bool) -> None:
        """Pause or unpause the side's containers: only the side being timed runs (its compose healthchecks
        and idle brokers would weigh on the others' rounds, on two cores)."""
        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={self.label}"], capture_output=True, text=True
        ).stdout.split()
        if found:
            subprocess.run(["docker", "pause" if frozen else "unpause", *found], capture_output=True)

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


class TcelWatch(Watcher):
    name = "tcel up --watch"

    def __init__(self, directory: Path, project: str, reloads: list[str]) -> None:
        super().__init__(directory)
        self.project = project
        self.env = {
            "TCEL_PROJECT_NAME": project,
            "TCEL_BROKER_PORT": str(free_port()),
            "TCEL_BACKEND_PORT": str(free_port()),
            "NO_COLOR": "1",
        }
        self.images: set[str] = set()
        self.reloads = reloads  # tcel's line for each reload, as printed
        self.label = f"io.tcel.project={project}"

    def start(self) -> None:
        from celery_cli import credentials
        from celery_cli.settings import resolve_project

        self.launch([TCEL, "up", "--watch"], self.env, "watching ")
        access = credentials.load(resolve_project(self.directory, self.project))
        self.connect(access.broker_url(), access.backend_url())

    def settle(self) -> None:
        line = self.wait_for("changed", 120)
        print(f"      {line}", file=sys.stderr)
        self.reloads.append(line)
        if "now tcel-worker:" in line:
            self.images.add(line.rsplit("now ", 1)[1].strip())
        elif "reload failed" in line:
            raise SystemExit(f"{self.name}: {line}")

    def stop(self) -> None:
        super().stop()
        subprocess.run(
            [TCEL, "down", "--volumes"], cwd=self.directory, env={**os.environ, **self.env}, capture_output=True
        )
        from celery_cli.credentials import state_file
        from celery_cli.settings import resolve_project

        project = resolve_project(self.directory, self.project)
        for kept in (state_file(project), project.state_dir / f"{project.name}.lock"):  # a throw-away project's
            kept.unlink(missing_ok=True)
        for image in self.images:  # named after this run's own saves
            subprocess.run(["docker", "image", "rm", image], capture_output=True)


class ComposeWatch(Watcher):
    """`docker compose watch` on the repository's docker-compose.yml, with the worker's `develop.watch` (and an
    image name of this run's own) in an override file."""

    def __init__(self, directory: Path, project: str, action: str) -> None:
        super().__init__(directory)
        self.name = f"docker compose watch ({action})"
        self.project = project
        self.action = action
        self.image = f"{project}-worker:latest"
        self.label = f"com.docker.compose.project={project}"
        broker_password, backend_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        broker_port, backend_port = free_port(), free_port()
        self.urls = (
            f"amqp://tcel:{broker_password}@127.0.0.1:{broker_port}//",
            f"redis://:{backend_password}@127.0.0.1:{backend_port}/0",
        )
        from celery_cli.settings import setting

        settings = {key: setting(key) for key in IMAGE_KEYS}  # the images tcel uses here, as scripts/bench passes
        settings.update(
            TCEL_BROKER_PASSWORD=broker_password,
            TCEL_BACKEND_PASSWORD=backend_password,
            TCEL_BROKER_PORT=broker_port,
            TCEL_BACKEND_PORT=backend_port,
        )
        (directory.parent / f"{project}.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        sync = "sync" in action
        rule = "          path: ./tasks.py\n" + ("          target: /home/user/tasks.py\n" if sync else "")
        # Docker 20.10 cannot copy a file into a container whose user is not root with the owner kept, which
        # compose's sync asks for ("getent unable to find entry \"user\"", by name or by number): on this
        # engine the sync side's worker runs as root, or compose could not sync at all.
        user = "    user: root\n" if sync else ""
        (directory.parent / f"{project}.yml").write_text(
            f"services:\n  worker:\n    image: {self.image}\n{user}    develop:\n      watch:\n"
            f"        - action: {action}\n{rule}"
        )

    def compose(self, *args: str) -> list[str]:
        parent = self.directory.parent
        return [
            "docker",
            "compose",
            "-p",
            self.project,
            "-f",
            str(REPO / "docker-compose.yml"),
            "-f",
            str(parent / f"{self.project}.yml"),
            "--project-directory",
            str(self.directory),
            "--env-file",
            str(parent / f"{self.project}.env"),
            *args,
        ]

    def start(self) -> None:
        self.launch(self.compose("watch"), {}, "Watch enabled")
        self.connect(*self.urls)

    def settle(self) -> None:
        time.sleep(1)  # compose is done once the new worker serves: the old one went before it started

    def stop(self) -> None:
        super().stop()
        subprocess.run(self.compose("down", "--volumes"), capture_output=True)
        built = subprocess.run(
            ["docker", "images", "-q", "--filter", f"label={self.label}"], capture_output=True, text=True
        ).stdout.split()
        for image in set(built):  # every worker image this side built, the untagged earlier ones too
            subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True)


def compare(rounds: int, samples: dict[str, list[float]], reloads: list[str]) -> None:
    """Fill `samples` with the seconds from save to the first task served by the new code, per side and round,
    and `reloads` with tcel's line for each reload (its build and replacement times); what was measured stays
    there when a later round fails."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        raise SystemExit("the edit loop is compared with Compose v2: install the docker compose plugin")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"tcel-bench-edit-{uuid.uuid4().hex[:6]}"
    name = work.name.replace("-", "")
    sides: list[Watcher] = []
    for label, make in (
        ("tcel", lambda d: TcelWatch(d, f"{name}tcel", reloads)),
        ("rebuild", lambda d: ComposeWatch(d, f"{name}rebuild", "rebuild")),
        ("sync", lambda d: ComposeWatch(d, f"{name}sync", "sync+restart")),
    ):
        directory = work / label
        subprocess.run([TCEL, "init", str(directory)], check=True, capture_output=True)
        sides.append(make(directory))
    base = (sides[0].directory / "tasks.py").read_text()
    samples.update({side.name: [] for side in sides})
    marks = itertools.count(1000)
    try:
        for side in sides:
            side.start()
            side.save_and_time(base, next(marks))  # a first save, not timed: the edit loop is many saves
            side.settle()
            side.freeze(True)
        for n in range(rounds):
            order = sides[n % 3 :] + sides[: n % 3]
            for side in order:
                side.freeze(False)
                time.sleep(2)
                seconds = side.save_and_time(base, next(marks))
                side.settle()
                side.freeze(True)
                samples[side.name].append(seconds)
                print(f"    round {n + 1}: {side.name}: {seconds:.2f}s", file=sys.stderr)
    finally:
        for side in sides:
            side.freeze(False)
            side.stop()
        shutil.rmtree(work, ignore_errors=True)
