"""`tcel up --swarm` on the lab (the manager and 2 nodes): workers spread over the nodes, tasks sent by tcel run
on every node, a node that dies or is drained loses no task, and `down` leaves nothing on any node."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from celery_cli.names import LABEL_PROJECT
from celery_cli.settings import setting
from tests.conftest import StackProject, json_keys, logs_followed_until, make_project, run_tcel
from tests.faults.conftest import results, tally
from tests.swarm.conftest import NODES, Lab, skip_or_fail, swarm_lab, wait_healthy

pytestmark = pytest.mark.swarm

WORKERS = 4


@pytest.fixture(scope="module")
def swarm_stack(lab: Lab, tmp_path_factory) -> Iterator[StackProject]:
    """One project on Swarm for this module: 4 workers over the manager and 2 nodes; `down` afterwards."""
    # the registry image every node runs its mirror from; on real machines each node pulls it from Docker Hub
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path_factory.mktemp("swarm")) as project:
        # tasks that run long enough to be killed mid-run, on 2 processes per worker so that some wait their turn
        project.env["TCEL_ADD_DELAY"] = "4"
        made = run_tcel("init", str(project.directory))  # files of its own, for the update test to edit
        assert made.code == 0, made.stderr
        try:
            up = project.tcel("up", "--swarm", "--workers", str(WORKERS), "--concurrency", "2")
            assert up.code == 0, up.stderr
            assert "every interface of the data node" in up.stderr
            assert "the registry's port" in up.stderr  # tcel runs the registry: its port is published too
            yield project
        finally:
            project.tcel("down", "--volumes")


def worker_nodes(stack: StackProject) -> dict[str, str]:
    """Celery node name -> swarm node, for every running worker task."""
    shown = json.loads(stack.tcel("status", "--json").stdout)
    return {
        f"celery@{s['hostname']}": s["node"]
        for s in shown["services"]
        if s["service"] == "worker" and s["state"] == "running"
    }


def send_adds(stack: StackProject, count: int) -> dict[str, int]:
    expected = {}
    for n in range(count):
        sent = stack.tcel("add", str(n), "1", "--quiet")
        assert sent.code == 0, sent.stderr
        expected[sent.stdout.strip()] = n + 1
    return expected


def kept_settings(stack: StackProject) -> dict[str, str]:
    """What the project's state file keeps of how its stack was started."""
    from celery_cli.credentials import kept
    from celery_cli.settings import resolve_project

    return kept(resolve_project(stack.directory, stack.name))


def lab_nodes(lab: Lab) -> list[str]:
    return sorted(name for name, client in lab.clients.items() if client is not lab.engine)


def test_workers_spread_and_tasks_run_on_every_node(lab: Lab, swarm_stack: StackProject):
    nodes = worker_nodes(swarm_stack)
    assert len(nodes) == WORKERS
    assert len(set(nodes.values())) >= 2, f"workers on one node only: {nodes}"
    expected = send_adds(swarm_stack, 12)
    records = results(swarm_stack, list(expected))
    right, lost = tally(records, expected)
    assert lost == 0, f"{right} of {len(expected)} came back"
    ran_on = {nodes[r["worker"]] for r in records.values()}
    assert set(lab_nodes(lab)) <= ran_on, f"tasks ran on {ran_on} only"


def test_logs_name_each_worker_by_its_slot(swarm_stack: StackProject):
    shown = swarm_stack.tcel("logs", "worker")
    assert shown.code == 0, shown.stderr
    ready = [line for line in shown.stdout.splitlines() if "ready." in line]
    assert len(ready) >= WORKERS
    for line in ready:  # "worker-3  | [...] celery@worker-3 ready."
        source = line.split("|")[0].strip()
        assert line.endswith(f"celery@{source} ready."), line
    one = swarm_stack.tcel("logs", "worker-2")
    assert one.code == 0 and one.stdout, one.stderr
    assert {line.split("|")[0].strip() for line in one.stdout.splitlines()} == {"worker-2"}


def test_logs_follow_gathers_every_worker_s_lines_from_every_node(swarm_stack: StackProject):
    """`logs -f` on Swarm follows each service's log (Swarm gathers it from every node), naming each worker by
    its slot, until Ctrl-C."""

    def send() -> str:
        sent = swarm_stack.tcel("add", "1", "1", "--quiet")
        assert sent.code == 0, sent.stderr
        return sent.stdout.strip()

    def done(line: str, ids: list[str]) -> bool:
        return "succeeded" in line and any(task in line for task in ids)

    _, seen, _ = logs_followed_until(swarm_stack, send, done, timeout=60)
    finished = [line for line in seen if "succeeded" in line]
    assert finished and all(line.split("|")[0].strip().startswith("worker-") for line in finished), seen


def test_scale_changes_replicas_without_ghost_workers(swarm_stack: StackProject):
    scaled = swarm_stack.tcel("scale", "2")
    assert scaled.code == 0, scaled.stderr
    slots = [f"celery@worker-{n}" for n in range(1, WORKERS + 1)]
    shown = wait_healthy(swarm_stack)  # Swarm keeps any 2 slots; the removed workers are not listed
    assert len(shown["workers"]) == 2 and {w["name"] for w in shown["workers"]} <= set(slots), shown["workers"]
    scaled = swarm_stack.tcel("scale", str(WORKERS))
    assert scaled.code == 0, scaled.stderr
    shown = wait_healthy(swarm_stack)
    assert sorted(w["name"] for w in shown["workers"]) == slots


def test_changed_tasks_roll_out_to_every_worker_before_up_returns(swarm_stack: StackProject):
    tasks = swarm_stack.directory / "tasks.py"
    tasks.write_text(tasks.read_text() + "\n\n@app.task\ndef triple(x):\n    return 3 * x\n")
    up = swarm_stack.tcel("up")
    assert up.code == 0, up.stderr
    for _ in range(WORKERS):  # whichever worker takes it knows the new task
        called = swarm_stack.tcel("call", "tasks.triple", "5", "--wait", "--json")
        assert called.code == 0, called.stderr
        assert json.loads(called.stdout)["result"] == 15


def test_passwords_are_secrets_not_environment(lab: Lab, swarm_stack: StackProject):
    access = swarm_stack.connection
    for service in lab.engine.services.list(filters={"label": f"{LABEL_PROJECT}={swarm_stack.name}"}):
        spec = json.dumps(service.attrs["Spec"])
        assert access.broker_password not in spec and access.backend_password not in spec, service.name
    # the workers' secret files belong to the image's user, readable by it only (a container made from the
    # image reads its /etc/passwd; the broker's and backend's images have no user and keep 0444)
    worker = lab.engine.services.get(f"tcel-{swarm_stack.name}-worker")
    files = worker.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert files and all(f["File"]["Mode"] == 0o400 and f["File"]["UID"] not in ("", "0") for f in files), files
    running = [
        container
        for client in lab.clients.values()
        for container in client.containers.list(filters={"label": f"com.docker.swarm.service.id={worker.id}"})
    ]
    assert running, "no worker container on any node"
    for container in running:
        code, output = container.exec_run(["sh", "-c", "stat -c '%U %a' /run/secrets/*"])
        assert code == 0 and set(output.decode().split()) == {"user", "400"}, output
        code, output = container.exec_run(["cat", "/run/secrets/celery_broker_url"], user="nobody")
        assert code != 0 and b"Permission denied" in output, output


def test_workers_run_the_pushed_image_named_after_its_build_files(lab: Lab, swarm_stack: StackProject):
    """Every worker runs the image `up` pushed, by a tag that is a hash of the files it is built from."""
    worker = lab.engine.services.get(f"tcel-{swarm_stack.name}-worker")
    image = worker.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
    registry, _, name = image.partition("/")
    tag = name.partition(":")[2]
    assert registry.startswith("127.0.0.1:") and name.startswith("tcel-worker:") and len(tag) == 12, image
    int(tag, 16)  # the build files' hash
    running = worker.tasks(filters={"desired-state": "running"})
    assert running and all(t["Spec"]["ContainerSpec"]["Image"].split("@")[0] == image for t in running)


def test_every_other_node_s_registry_mirror_has_a_healthcheck_that_passes(lab: Lab, swarm_stack: StackProject):
    """Each other node's registry mirror has a healthcheck (Swarm counts its task as running, and `up` places
    workers, only once it passed: the registry listens only after reaching the central one, 5 s late in some
    starts, and a worker placed before that failed its pull) and it passes with the registry image in use."""
    service = f"tcel-{swarm_stack.name}-registry-mirror"
    test = lab.engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Healthcheck", {})
    assert test.get("Test", [None])[0] == "CMD", test
    for name in lab_nodes(lab):
        found = lab.clients[name].containers.list(filters={"label": f"com.docker.swarm.service.name={service}"})
        assert len(found) == 1, f"{name}: {[c.name for c in found]}"
        assert found[0].attrs["State"]["Health"]["Status"] == "healthy", (name, found[0].attrs["State"]["Health"])


def test_a_running_broker_is_not_moved_to_another_data_node(lab: Lab, swarm_stack: StackProject):
    elsewhere = lab_nodes(lab)[0]
    refused = swarm_stack.tcel("up", "--data-node", elsewhere)
    assert refused.code == 2, refused.stderr
    assert f"on node {elsewhere} they would start on empty volumes" in refused.stderr
    assert f"then 'tcel up --swarm --data-node {elsewhere}'" in refused.stderr
    broker = next(
        s for s in json.loads(swarm_stack.tcel("status", "--json").stdout)["services"] if s["service"] == "broker"
    )
    assert broker["node"] != elsewhere
    assert kept_settings(swarm_stack)["TCEL_DATA_NODE"] != elsewhere


def test_plain_container_commands_neither_start_nor_see_the_swarm_stack(swarm_stack: StackProject):
    """TCEL_ENGINE=containers on a project that runs on Swarm: `up` and `down` are refused before anything is made
    or removed, and the plain-container stack does not take Swarm's task containers (they carry the project's
    labels) for its own."""
    plain = {"TCEL_ENGINE": "containers"}
    refused = swarm_stack.tcel("up", env=plain)
    assert refused.code == 2, refused.stderr
    assert f"stack {swarm_stack.name} runs as Swarm services" in refused.stderr
    assert "TCEL_ENGINE=swarm tcel down" in refused.stderr
    shown = swarm_stack.tcel("status", "--json", env=plain)
    assert shown.code == 8 and json.loads(shown.stdout)["services"] == [], shown.stdout
    missed = swarm_stack.tcel("down", env=plain)  # would remove nothing, and say so as if the stack were down
    assert missed.code == 2 and "run 'TCEL_ENGINE=swarm tcel down'" in missed.stderr, missed.stderr
    wait_healthy(swarm_stack)  # the state file still names Swarm: a bare `status` finds every service


def test_drained_node_loses_its_workers_to_the_others(lab: Lab, swarm_stack: StackProject):
    drained = next(node for node in lab_nodes(lab) if node in worker_nodes(swarm_stack).values())
    node = next(n for n in lab.engine.nodes.list() if n.attrs["Description"]["Hostname"] == drained)
    try:
        node.update({**node.attrs["Spec"], "Availability": "drain"})
        deadline = time.monotonic() + 60
        while drained in worker_nodes(swarm_stack).values() or len(worker_nodes(swarm_stack)) < WORKERS:
            assert time.monotonic() < deadline, f"workers still on {drained}: {worker_nodes(swarm_stack)}"
            time.sleep(1)
        wait_healthy(swarm_stack)
        expected = send_adds(swarm_stack, 8)
        assert tally(results(swarm_stack, list(expected)), expected)[1] == 0
    finally:
        node.reload()
        node.update({**node.attrs["Spec"], "Availability": "active"})


def test_node_killed_mid_run_loses_no_task(lab: Lab, swarm_stack: StackProject):
    """A power cut on a node whose workers run tasks: Swarm starts its workers elsewhere, the broker gives the
    tasks they held to the others, and every task comes back with its result (`tcel bench` sends them all at
    once and waits for every one: a lost task is a timeout)."""
    nodes = worker_nodes(swarm_stack)
    count = 24
    bench = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery_cli",
            "bench",
            "--task",
            "add",
            "-n",
            str(count),
            "--timeout",
            "120",
            "--json",
            "--project-name",
            swarm_stack.name,
        ],
        cwd=swarm_stack.directory,
        env={**os.environ, **swarm_stack.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # kill while tasks run on that node, not before
            running = json.loads(swarm_stack.tcel("results", "--state", "STARTED", "--json").stdout)["tasks"]
            victims = sorted({nodes.get(t["worker"]) for t in running} & set(lab_nodes(lab)))
            if victims:
                break
            assert time.monotonic() < deadline, "no task started on a lab node within 30 s"
            time.sleep(0.2)
        killed = swarm_lab("kill", victims[0])
        assert killed.returncode == 0, killed.stderr
        out, err = bench.communicate(timeout=180)
        done = json.loads(out) if bench.returncode == 0 else {"tasks": count, "failed": None}
        print(
            f"\nFAULT node {victims[0]} killed mid-run: sent {count}, bench exit {bench.returncode}, "
            f"failed {done['failed']} {err.strip().splitlines()[-1:]}"
        )
        assert bench.returncode == 0, err
        assert (done["tasks"], done["failed"]) == (count, 0)
        deadline = time.monotonic() + 60
        while victims[0] in worker_nodes(swarm_stack).values() or len(worker_nodes(swarm_stack)) < WORKERS:
            assert time.monotonic() < deadline, f"workers not rescheduled: {worker_nodes(swarm_stack)}"
            time.sleep(1)
    finally:
        if bench.poll() is None:
            bench.kill()
        back = swarm_lab("up", str(NODES))  # the node's engine starts again and rejoins
        assert back.returncode == 0, back.stderr
    wait_healthy(swarm_stack)


def test_concurrency_and_queue_changes_roll_out_to_the_running_workers(swarm_stack: StackProject):
    """`up --concurrency 3 --queues celery,extra` on the running service: one rolling update, and `up` returns once
    every worker runs 3 processes and consumes both queues. `status` shows the replicas, running of desired."""
    up = swarm_stack.tcel("up", "--concurrency", "3", "--queues", "celery,extra")
    assert up.code == 0, up.stderr
    assert "concurrency 3, queues celery,extra" in up.stderr
    shown = swarm_stack.tcel_json("status")
    assert [w["pool"] for w in shown["workers"]] == [3] * WORKERS, shown["workers"]
    assert {q["name"]: q["consumers"] for q in shown["queues"]}.get("extra") == WORKERS, shown["queues"]
    assert {tuple(s["replicas"]) for s in shown["services"] if s["service"] == "worker"} == {(WORKERS, WORKERS)}
    again = swarm_stack.tcel("up")  # as it runs now: nothing to change
    assert again.code == 0 and "nothing changed" in again.stderr, again.stderr
    table = swarm_stack.tcel("status")
    assert f"{WORKERS}/{WORKERS}" in table.stdout, table.stdout


def test_removing_some_services_waits_for_their_containers_only(lab: Lab, swarm_stack: StackProject):
    """What a failed `up` removes (the services it made) goes without waiting on the containers of the services
    that ran before it, which stay: the broker, backend and registry keep theirs on this manager."""
    from celery_cli.settings import resolve_project
    from celery_cli.stack.swarm import docker_api as swarm_engine

    project = resolve_project(swarm_stack.directory, swarm_stack.name)
    before = {s.id for s in swarm_engine.services(lab.engine, project)}
    manager = lab.engine.info()["Swarm"]["NodeID"]
    extra = lab.engine.services.create(
        setting("TCEL_REGISTRY_IMAGE"),
        name=f"tcel-{swarm_stack.name}-extra",
        labels=project.labels,
        container_labels=project.labels,
        constraints=[f"node.id=={manager}"],
    )
    try:
        deadline = time.monotonic() + 60
        while (
            not extra.tasks(filters={"desired-state": "running"})
            or extra.tasks(filters={"desired-state": "running"})[0]["Status"]["State"] != "running"
        ):
            assert time.monotonic() < deadline, "the extra service did not start in 60 s"
            time.sleep(0.3)
        swarm_engine.remove_services(
            lab.engine, project, [swarm_engine.Service(extra)], timeout=20
        )  # NotRunning if it waited on others
    finally:
        with contextlib.suppress(Exception):
            extra.remove()
    assert {s.id for s in swarm_engine.services(lab.engine, project)} == before
    wait_healthy(swarm_stack)


def test_status_json_has_the_same_keys_on_both_engines(lab: Lab, swarm_stack: StackProject, tmp_path):
    """`status --json` of the Swarm stack and of a plain-container stack on the same engine: the same keys, the
    engine named in a field of its own."""
    with make_project(lab.engine, tmp_path) as plain:
        try:
            up = plain.tcel("up", "--workers", "1")
            assert up.code == 0, up.stderr
            views = {
                "containers": json.loads(plain.tcel("status", "--json").stdout),
                "swarm": json.loads(swarm_stack.tcel("status", "--json").stdout),
            }
        finally:
            plain.tcel("down", "--volumes")
    assert {engine: view["engine"] for engine, view in views.items()} == {"containers": "containers", "swarm": "swarm"}
    compared = ("", "services[].", "workers[].", "backend.")  # parts both stacks have (tasks may be none yet)

    def keys(view: dict) -> set[str]:
        return {key for key in json_keys(view) if key.rpartition(".")[0] + "." in compared or "." not in key}

    assert keys(views["containers"]) == keys(views["swarm"])


def test_down_leaves_nothing_on_any_node(lab: Lab, swarm_stack: StackProject):
    registry = f"127.0.0.1:{kept_settings(swarm_stack)['TCEL_REGISTRY_PORT']}"
    assert lab.engine.images.list(name=f"{registry}/tcel-worker")
    down = swarm_stack.tcel("down", "--volumes")
    assert down.code == 0, down.stderr
    label = {"label": f"{LABEL_PROJECT}={swarm_stack.name}"}
    assert lab.engine.services.list(filters=label) == []
    assert lab.engine.secrets.list(filters=label) == []
    assert lab.engine.configs.list(filters=label) == []  # the copies of the state file go with the data
    deadline = time.monotonic() + 60  # a node removes its containers as its agent catches up
    for name, client in lab.clients.items():
        while client.containers.list(all=True, filters=label) or client.networks.list(filters=label):
            left = [f"{c.name} ({c.status})" for c in client.containers.list(all=True, filters=label)] + [
                n.name for n in client.networks.list(filters=label)
            ]
            assert time.monotonic() < deadline, f"left on {name}: {', '.join(left)}"
            time.sleep(1)
    assert lab.engine.volumes.list(filters=label) == []
    assert lab.engine.images.list(name=f"{registry}/tcel-worker") == []  # the tags of the registry that went
    assert not any(
        f"io.tcel.data.{swarm_stack.name}" in (n.attrs["Spec"].get("Labels") or {}) for n in lab.engine.nodes.list()
    )


@pytest.mark.lab_down
def test_init_makes_a_single_node_swarm_of_an_engine_in_none(engine, tmp_path):
    """`up --swarm` on an engine in no swarm: refused without --init, a single-node swarm with it, and a
    plain-container stack that ran before keeps working (its services still resolve each other's names). Runs
    after the lab is down (in a clean CI run), and makes the engine leave the swarm it made at the end: leaving
    cuts name resolution in the networks that exist then, so the plain stack goes first."""
    if engine.info()["Swarm"]["LocalNodeState"] != "inactive":
        skip_or_fail("the engine is in a swarm (a lab left up): the init path needs one in none")
    had_gwbridge = bool(engine.networks.list(names=["docker_gwbridge"]))
    for directory in ("swarm", "plain"):
        (tmp_path / directory).mkdir()
    with make_project(engine, tmp_path / "swarm") as project, make_project(engine, tmp_path / "plain") as plain:
        refused = project.tcel("up", "--swarm")
        assert refused.code == 2, refused.stderr
        assert "tcel up --swarm --init" in refused.stderr
        assert engine.info()["Swarm"]["LocalNodeState"] == "inactive"
        try:
            assert plain.tcel("up", "--workers", "1").code == 0
            up = project.tcel("up", "--swarm", "--init", "--workers", "1")
            assert up.code == 0, up.stderr
            assert "single-node swarm" in up.stderr and "docker swarm leave" in up.stderr
            added = project.tcel("add", "1", "2", "--wait", "--json")
            assert added.code == 0, added.stderr
            assert json.loads(added.stdout)["result"] == 3
            worker = engine.containers.get(f"tcel-{plain.name}-worker-1")
            worker.restart()  # a new connection: the broker's name must resolve in the plain stack's network
            for name in ("broker", "backend"):
                code, output = worker.exec_run(["python3", "-c", f"import socket; socket.gethostbyname('{name}')"])
                assert code == 0, f"{name} does not resolve in {worker.name} after swarm init: {output.decode()}"
            wait_healthy(plain)
            added = plain.tcel("add", "2", "3", "--wait", "--json")
            assert added.code == 0, added.stderr
            assert json.loads(added.stdout)["result"] == 5
        finally:
            plain.tcel("down", "--volumes")
            project.tcel("down", "--volumes")
            if engine.info()["Swarm"]["LocalNodeState"] != "inactive":
                engine.swarm.leave(force=True)
            if not had_gwbridge:
                for network in engine.networks.list(names=["docker_gwbridge"]):
                    network.remove()
