"""The multi-node test bed for every swarm test: scripts/swarm-lab's 2 extra engines joined to the main engine's
swarm. A lab that is already up (a developer's, kept between runs) is used and left up; otherwise the session
brings it up and takes it down at its end (swarm tests run last, see tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, StackProject

LAB = REPO / "scripts" / "swarm-lab"
LAB_STATE = Path("/var/lib/tcel-swarm-lab")
NODES = 2


def swarm_lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, timeout=timeout)


def lab_view(engine) -> dict:
    """What the lab may change on the main engine: its swarm membership and the swarm's networks."""
    networks = {
        n.name
        for n in engine.networks.list()
        if n.name in ("docker_gwbridge", "ingress") or n.attrs.get("Driver") == "overlay"
    }
    return {"swarm": engine.info()["Swarm"]["LocalNodeState"], "networks": sorted(networks)}


def skip_or_fail(reason: str) -> None:
    """Skip a swarm test that cannot run here; in CI (CI set, as .ci/run does) fail it: a CI run whose swarm
    tests all skipped would pass without having tested Swarm."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run every swarm test")
    pytest.skip(reason)


@dataclass
class Lab:
    engine: object  # the main engine, the swarm's manager
    clients: dict[str, object]  # host name -> docker-py client, for every node, the manager's included
    before: dict  # lab_view of the main engine before `up`
    reused: bool  # it was up before this session: leave it up


@pytest.fixture(scope="session")
def lab(engine) -> Iterator[Lab]:
    """`scripts/swarm-lab up 2` (a no-op on a lab already up with 2 nodes); `down` at the end of the session
    unless the lab was up before it."""
    import docker

    if os.geteuid() != 0:
        skip_or_fail("scripts/swarm-lab needs root")
    reused = (LAB_STATE / "swarm").exists()
    before = lab_view(engine)
    if before["swarm"] != "inactive" and not reused:
        skip_or_fail("the main engine is already in a swarm the lab did not make")
    clients = {}
    try:
        up = swarm_lab("up", str(NODES))
        assert up.returncode == 0, up.stderr
        clients[engine.info()["Name"]] = engine
        for index in range(1, NODES + 1):
            shown = swarm_lab("env", str(index))
            assert shown.returncode == 0, shown.stderr
            client = docker.DockerClient(base_url=shown.stdout.strip().split("=", 1)[1], timeout=60)
            clients[client.info()["Name"]] = client
        yield Lab(engine, clients, before, reused)
    finally:
        for client in clients.values():
            if client is not engine:
                client.close()
        if not reused:
            down = swarm_lab("down")
            assert down.returncode == 0, down.stderr


def wait_healthy(stack: StackProject, timeout: float = 90) -> dict:
    """Wait until `tcel status` says every service runs and every worker answers."""
    deadline = time.monotonic() + timeout
    while True:
        shown = stack.tcel("status", "--json")
        if shown.code == 0:
            return json.loads(shown.stdout)
        assert time.monotonic() < deadline, f"not healthy after {timeout} s: {shown.stdout[-2000:]}"
        time.sleep(1)
