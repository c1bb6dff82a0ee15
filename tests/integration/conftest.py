"""Fixtures that drive the real Docker engine; everything a test makes carries its project label and is
removed afterwards, even when the test fails."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from celery_cli.settings import LABEL_PROJECT
from tests.conftest import Run, run_tcel


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


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
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TestProject:
    """A uniquely named tcel project in a temporary directory, on free ports."""

    name: str
    directory: Path
    engine: object
    env: dict[str, str] = field(default_factory=dict)

    def tcel(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600, input: str | None = None) -> Run:
        return run_tcel(
            *args, "--project-name", self.name, env={**self.env, **(env or {})}, cwd=self.directory, timeout=timeout,
            input=input,
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
        from celery_cli import connection
        from celery_cli.settings import resolve_project

        return connection.load(resolve_project(self.directory, self.name))

    def remove_everything(self) -> None:
        for container in self.containers():
            container.remove(force=True)
        for network in self.networks():
            network.remove()
        for volume in self.volumes():
            volume.remove(force=True)


def make_project(engine, directory: Path) -> Iterator[TestProject]:
    project = TestProject(
        name=f"tceltest{uuid.uuid4().hex[:8]}",
        directory=directory,
        engine=engine,
        env={
            "TCEL_BROKER_PORT": str(free_port()),
            "TCEL_BACKEND_PORT": str(free_port()),
            "TCEL_BROKER_ADMIN_PORT": str(free_port()),
            "TCEL_ADD_DELAY": "1",
        },
    )
    try:
        yield project
    finally:
        project.remove_everything()


@pytest.fixture
def project(engine, tmp_path: Path) -> Iterator[TestProject]:
    """A project of this test's own, removed whatever happens."""
    yield from make_project(engine, tmp_path)


@pytest.fixture(scope="session")
def stack(engine, tmp_path_factory) -> Iterator[TestProject]:
    """One running stack shared by the tests that only need one."""
    for project in make_project(engine, tmp_path_factory.mktemp("stack")):
        result = project.tcel("up")
        assert result.code == 0, result.stderr
        yield project
