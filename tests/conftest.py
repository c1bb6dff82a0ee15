"""Shared by every test: running the real CLI in a subprocess, and projects on the real Docker engine whose
every container, network and volume carries the project's label and is removed afterwards, even on failure."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from celery_cli.names import LABEL_PROJECT

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_tcel(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    input: str | None = None,
    wrapper: tuple[str, ...] = (),
) -> Run:
    """Run `python -m celery_cli ARGS` as a user would, without a terminal; `wrapper`: a command to run it
    through (such as `nsenter --net=...` into another network namespace)."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        [*wrapper, sys.executable, "-m", "celery_cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        input=input,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config, and no TCEL_* settings from the environment."""
    for key in list(os.environ):
        if key.startswith("TCEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "tcel" / "config.env"


def pytest_configure(config: pytest.Config) -> None:
    """Stacks' credentials go to a throw-away state directory, for this process and every tcel it runs."""
    import tempfile

    # A run started in the background by a non-interactive shell (`scripts/test &`) inherits SIGINT ignored, and
    # so would every tcel it starts: the tests that press Ctrl-C need tcel to hear it as a user's terminal sends it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="tcel-test-state-")
    for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND_URL"):  # tests talk to their own stacks only
        os.environ.pop(key, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything outside tests/unit drives a real engine. Swarm tests run last: when the lab goes down, the main
    engine leaves the swarm, and leaving cuts name resolution in the networks that exist then, such as the
    shared stacks' (they are not used after these tests). `swarm init` alone leaves them working."""
    unit = Path(__file__).parent / "unit"
    for item in items:
        if unit not in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
    # and the one that takes the lab down after every other swarm test
    items.sort(
        key=lambda item: (item.get_closest_marker("swarm") is not None, item.get_closest_marker("lab_down") is not None)
    )


@pytest.fixture(scope="session")
def engine():
    """The Docker engine; without one, the integration tests skip, except in CI where they fail."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine and none answers: {exc}")
        pytest.skip(f"no Docker engine answers: {exc}")
    remove_stale_test_stacks(client)
    yield client
    client.close()


TEST_PREFIX = "tceltest"


def test_project_name() -> str:
    """A test project's name carries the pid of the pytest process that made it, so that a later run can tell
    a stack left by a killed run (its pid is gone) from one another run is using now."""
    return f"{TEST_PREFIX}{os.getpid()}x{uuid.uuid4().hex[:6]}"


def _owner_alive(project: str) -> bool:
    pid = project[len(TEST_PREFIX) :].partition("x")[0]
    if not pid.isdigit():
        return True  # not a name this conftest makes: leave it alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_test_stacks(client) -> None:
    """Remove what test runs that were killed (their finally blocks never ran) left on the engine."""

    def stale(labels: dict | None) -> bool:
        project = (labels or {}).get(LABEL_PROJECT, "")
        return project.startswith(TEST_PREFIX) and not _owner_alive(project)

    only_ours = {"label": LABEL_PROJECT}
    removals = [
        (c, {"force": True, "v": True}) for c in client.containers.list(all=True, filters=only_ours) if stale(c.labels)
    ]
    removals += [(n, {}) for n in client.networks.list(filters=only_ours) if stale(n.attrs.get("Labels"))]
    removals += [(v, {"force": True}) for v in client.volumes.list(filters=only_ours) if stale(v.attrs.get("Labels"))]
    for thing, options in removals:
        with suppress(Exception):
            thing.remove(**options)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class StackProject:
    """A uniquely named tcel project in a temporary directory, on free ports."""

    name: str
    directory: Path
    engine: object
    env: dict[str, str] = field(default_factory=dict)
    wrapper: tuple[str, ...] = ()  # what every tcel of the project runs through (see run_tcel)

    def tcel(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600, input: str | None = None
    ) -> Run:
        return run_tcel(
            *args,
            "--project-name",
            self.name,
            env={**self.env, **(env or {})},
            cwd=self.directory,
            timeout=timeout,
            input=input,
            wrapper=self.wrapper,
        )

    def tcel_json(self, *args: str) -> dict:
        result = self.tcel(*args, "--json")
        assert result.code == 0, result.stderr
        return json.loads(result.stdout)

    def containers(self) -> list:
        return self.engine.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={self.name}"})

    def networks(self) -> list:
        return self.engine.networks.list(filters={"label": f"{LABEL_PROJECT}={self.name}"})

    def volumes(self) -> list:
        return self.engine.volumes.list(filters={"label": f"{LABEL_PROJECT}={self.name}"})

    @property
    def connection(self):
        from celery_cli import credentials
        from celery_cli.settings import resolve_project

        return credentials.load(resolve_project(self.directory, self.name))

    def remove_everything(self) -> None:
        for container in self.containers():
            container.remove(force=True, v=True)
        for network in self.networks():
            network.remove()
        for volume in self.volumes():
            volume.remove(force=True)


@contextmanager
def make_project(engine, directory: Path) -> Iterator[StackProject]:
    project = StackProject(
        name=test_project_name(),
        directory=directory,
        engine=engine,
        env={
            "TCEL_BROKER_PORT": str(free_port()),
            "TCEL_BACKEND_PORT": str(free_port()),
            "TCEL_ADD_DELAY": "1",
        },
    )
    try:
        yield project
    finally:
        project.remove_everything()


def logs_followed_until(stack: StackProject, send, seen_in, timeout: float = 30) -> tuple[list[str], list[str], str]:
    """Run `tcel logs -f --tail 0`, call `send()` (a task id) every 2 s until `seen_in(line, ids)` holds for a
    line it printed (the first task may finish before it has attached), then Ctrl-C it; the ids sent, the lines
    and its stderr. Fails when it exits other than 0 after Ctrl-C or shows a traceback."""
    import queue
    import signal
    import threading
    import time

    command = [sys.executable, "-m", "celery_cli", "logs", "-f", "--tail", "0", "--project-name", stack.name]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **stack.env}
    lines: queue.Queue[str] = queue.Queue()
    sent: list[str] = []
    seen: list[str] = []

    def read(stream) -> None:
        for line in stream:
            lines.put(line)

    with subprocess.Popen(
        command, cwd=stack.directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as following:
        threading.Thread(target=read, args=(following.stdout,), daemon=True).start()
        try:
            deadline = time.monotonic() + timeout
            while not any(seen_in(line, sent) for line in seen):
                assert time.monotonic() < deadline, f"no line of tasks {sent} in {timeout:.0f} s: {seen[-5:]}"
                sent.append(send())
                pause = time.monotonic() + 2
                while time.monotonic() < pause:
                    with suppress(queue.Empty):
                        seen.append(lines.get(timeout=0.2))
        finally:
            following.send_signal(signal.SIGINT)
            try:
                following.wait(timeout=30)
            except subprocess.TimeoutExpired:
                following.kill()
        stderr = following.stderr.read()
    assert following.returncode == 0 and "Traceback" not in stderr, stderr
    return sent, seen, stderr


@pytest.fixture
def project(engine, tmp_path: Path) -> Iterator[StackProject]:
    """A project of this test's own, removed whatever happens."""
    with make_project(engine, tmp_path) as made:
        yield made


@pytest.fixture(scope="session")
def stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    """One running stack shared by the tests that only need one."""
    with make_project(engine, tmp_path_factory.mktemp("stack")) as project:
        result = project.tcel("up")
        assert result.code == 0, result.stderr
        yield project


def json_keys(value: object, path: str = "") -> set[str]:
    """Every key path of a JSON document, such as `services[].node`; the items of a list are merged."""
    if isinstance(value, dict):
        return {found for key, item in value.items() for found in {path + key} | json_keys(item, f"{path}{key}.")}
    if isinstance(value, list):
        return {found for item in value for found in json_keys(item, f"{path.rstrip('.')}[].")}
    return set()
