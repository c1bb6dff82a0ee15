"""The multi-node test bed, scripts/swarm-lab: extra engines with host names of their own join the main engine's
swarm, containers on different nodes reach each other over an overlay network, plain containers on the main
engine keep working, and `down` leaves the machine as it found it."""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.swarm.conftest import NODES, Lab, lab_view, skip_or_fail, swarm_lab

pytestmark = pytest.mark.swarm

LABELS = {"io.tcel.test": "swarm-lab"}

# Run in a task's container: resolve the service name (dnsrr: one address per task), then fetch a page from
# every other task by its container name; the names of tasks that just started can take a moment to spread.
PROBE = """
import socket, sys, time, urllib.request
service, *peers = sys.argv[1:]
for peer in peers:
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://{peer}:8000/", timeout=3).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
print(len(socket.gethostbyname_ex(service)[2]))
"""


def leftovers() -> list[str]:
    """Anything of the lab still on this machine: namespaces, links, processes, mounts, files, cgroups."""
    found = [f"netns {name}" for name in _listdir("/run/netns") if name.startswith("tcel-")]
    found += [f"link {name}" for name in _listdir("/sys/class/net") if name.startswith("tcel-")]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "/tcel-swarm-lab/" in cmdline:
            found.append(f"process {proc.name}: {cmdline[:80]}")
    found += [
        f"mount {line.split()[4]}"
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if "tcel-swarm-lab" in line
    ]
    found += [f"path {path}" for path in ("/var/lib/tcel-swarm-lab", "/run/tcel-swarm-lab") if Path(path).exists()]
    found += [f"cgroup {path}" for path in Path("/sys/fs/cgroup").glob("**/tcel-swarm-lab") if path.is_dir()]
    return found


def _listdir(path: str) -> list[str]:
    return os.listdir(path) if os.path.isdir(path) else []


def python_image(engine) -> str:
    """The Python base image tcel's workers use, which `scripts/test` makes sure of."""
    import docker

    from celery_cli.settings import setting

    name = setting("TCEL_PYTHON_IMAGE")
    try:
        engine.images.get(name)
    except docker.errors.ImageNotFound:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no image {name}: run scripts/offline-images")
    return name


def test_nodes_are_ready_with_host_names_of_their_own(lab: Lab):
    nodes = lab.engine.nodes.list()
    assert [n.attrs["Status"]["State"] for n in nodes] == ["ready"] * (NODES + 1)
    host_names = sorted(n.attrs["Description"]["Hostname"] for n in nodes)
    assert host_names == sorted(lab.clients)
    assert len(set(host_names)) == NODES + 1


def test_dnsrr_tasks_on_different_nodes_reach_each_other_by_name(lab: Lab):
    import docker

    image = python_image(lab.engine)
    loaded = swarm_lab("load", image)
    assert loaded.returncode == 0, loaded.stderr
    name = f"tcel-lab-test-{uuid.uuid4().hex[:8]}"
    network = lab.engine.networks.create(name, driver="overlay", attachable=True, labels=LABELS)
    service = None
    try:
        service = lab.engine.services.create(
            image,
            ["python3", "-m", "http.server", "8000"],
            name=name,
            networks=[name],
            labels=LABELS,
            init=True,
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
            mode=docker.types.ServiceMode("replicated", replicas=NODES + 1),
            maxreplicas=1,
        )
        containers = running_containers(lab, service, NODES + 1)
        assert len(containers) >= 2, "tasks placed on fewer than two nodes"
        for host, container in containers.items():
            peers = [other.name for other_host, other in containers.items() if other_host != host]
            code, output = container.exec_run(["python3", "-c", PROBE, name, *peers])
            assert code == 0, f"from {host}: {output.decode()}"
            assert output.decode().strip() == str(NODES + 1), f"{name} resolves to {output.decode()} on {host}"
    finally:
        if service is not None:
            service.remove()
        remove_when_free(network)


def running_containers(lab: Lab, service, count: int, timeout: float = 60) -> dict[str, object]:
    """Host name -> container of each running task, once `count` tasks run."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = service.tasks(filters={"desired-state": "running"})
        running = [t for t in tasks if t["Status"]["State"] == "running"]
        if len(running) == count:
            break
        failed = [
            t["Status"].get("Err", t["Status"]["State"])
            for t in service.tasks()
            if t["Status"]["State"] in ("failed", "rejected")
        ]
        assert not failed, f"tasks failed: {failed}"
        assert time.monotonic() < deadline, f"{len(running)} of {count} tasks running after {timeout} s: {tasks}"
        time.sleep(0.3)
    containers = {}
    for task in running:
        host = lab.engine.nodes.get(task["NodeID"]).attrs["Description"]["Hostname"]
        containers[host] = lab.clients[host].containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    return containers


def remove_when_free(network, timeout: float = 30) -> None:
    """Remove a network once the tasks that used it are gone."""
    import docker

    deadline = time.monotonic() + timeout
    while True:
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_plain_container_with_published_port_works_while_in_swarm_mode(lab: Lab):
    port = free_port()
    container = lab.engine.containers.run(
        python_image(lab.engine),
        ["python3", "-m", "http.server", "8000"],
        detach=True,
        init=True,
        labels=LABELS,
        ports={"8000/tcp": ("127.0.0.1", port)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "no answer on the published port"
                time.sleep(0.2)
    finally:
        container.remove(force=True)


@pytest.mark.lab_down
def test_down_leaves_nothing_and_a_second_down_is_a_no_op(lab: Lab):
    if lab.reused:
        skip_or_fail("the lab was up before these tests: it is left up (scripts/swarm-lab down takes it down)")
    down = swarm_lab("down")
    assert down.returncode == 0, down.stderr
    assert leftovers() == []
    assert lab_view(lab.engine) == lab.before
    again = swarm_lab("down")
    assert again.returncode == 0, again.stderr
    assert "nothing to remove" in again.stderr
