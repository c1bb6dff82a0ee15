"""The autoscaler (`tcel up --autoscale`) on plain containers: a burst of slow tasks makes it add workers, every
task succeeds and runs exactly once (each id in one worker's log), and after the cool-down it is back to MIN,
each decision a log line and the newest one in `tcel status`; a later `up` keeps it, `up --no-autoscale` removes
it."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

from tests.conftest import StackProject, make_project

BURST = 30  # tasks.add sleeps TCEL_ADD_DELAY=1 s (make_project); one worker of 2 processes needs 15 s
MINIMUM, MAXIMUM = 1, 3
COOLDOWN = 4


def running_workers(project: StackProject) -> list[str]:
    view = json.loads(project.tcel("status", "--json").stdout)  # exits 11 while a new worker boots
    return [s["name"] for s in view["services"] if s["service"] == "worker" and s["state"] == "running"]


def wait_for(what, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def send_burst(project: StackProject, count: int) -> list:
    """`count` tasks.add(i, i) published at once through a plain Celery client (trusting the stack's authority
    when it serves TLS, as on Swarm); their AsyncResults."""
    from celery import Celery

    from celery_cli.broker_tls import tls_of

    access = project.connection
    url = access.broker_url()
    use_ssl = tls_of(url, access.ca_file if access.tls else "")
    app = Celery("burst", broker=url, backend=access.backend_url(), broker_use_ssl=use_ssl)
    return [app.send_task("tasks.add", (i, i)) for i in range(count)]


def succeeded_ids(project: StackProject) -> tuple[Counter[str], set[str]]:
    """How often each task id shows as succeeded in the running workers' logs, and the workers that ran any."""
    seen: Counter[str] = Counter()
    served = set()
    for container in project.containers():
        if container.labels.get("io.tcel.service") == "worker":
            text = container.logs().decode(errors="replace")
            ids = re.findall(r"Task tasks\.add\[([0-9a-f-]+)\] succeeded", text)
            seen.update(ids)
            served |= {container.name} if ids else set()
    return seen, served


def test_a_burst_adds_workers_every_task_runs_once_and_it_returns_to_the_minimum(engine, tmp_path) -> None:
    with make_project(engine, tmp_path) as project:
        bounds = f"{MINIMUM}:{MAXIMUM}"
        up = project.tcel("up", "--autoscale", bounds, "--autoscale-threshold", "2",
                          "--autoscale-cooldown", str(COOLDOWN), "--concurrency", "2")  # fmt: skip
        assert up.code == 0, up.stderr
        assert "autoscale 1..3 workers" in up.stderr
        assert running_workers(project) == [f"tcel-{project.name}-worker-1"]
        autoscaler = engine.containers.get(f"tcel-{project.name}-autoscaler")
        access = project.connection
        assert access.broker_password not in json.dumps(autoscaler.attrs)  # its URLs are files

        results = send_burst(project, BURST)
        most = wait_for(lambda: len(running_workers(project)) > MINIMUM and len(running_workers(project)), 60)
        assert most and most > MINIMUM, "no worker was added"
        values = [r.get(timeout=120) for r in results]
        assert values == [2 * i for i in range(BURST)]
        assert all(r.state == "SUCCESS" for r in results)
        ran, served = succeeded_ids(project)  # before any worker is removed: the cool-down has not passed yet
        assert ran == Counter({r.id: 1 for r in results}), ran
        assert len(served) > MINIMUM, f"only {served} ran tasks: the added workers did not serve"

        back = wait_for(lambda: len(running_workers(project)) == MINIMUM, 90)
        assert back, f"still {running_workers(project)} after the cool-down"
        view = json.loads(project.tcel("status", "--json").stdout)
        decided = view["autoscale"]
        logged = project.tcel("logs", "autoscaler").stdout
        assert decided["policy"].startswith(f"{bounds}:") and decided["current"] == MINIMUM, (decided, logged)
        assert [s["ready"] for s in view["services"] if s["service"] == "autoscaler"] == [True]
        assert "autoscale up: 1 -> " in logged and "autoscale down: 2 -> 1 workers" in logged, logged
        human = project.tcel("status")
        assert "autoscale: 1..3 workers: 1 running" in human.stdout

        again = project.tcel("up", "--json")  # a later up keeps it as it is
        assert again.code == 0 and json.loads(again.stdout)["autoscale"] == decided["policy"], again.stderr
        assert autoscaler.id == engine.containers.get(f"tcel-{project.name}-autoscaler").id
        off = project.tcel("up", "--no-autoscale", "--json")
        assert off.code == 0 and f"tcel-{project.name}-autoscaler" in json.loads(off.stdout)["removed"], off.stderr
        assert "autoscaler" not in {c.labels.get("io.tcel.service") for c in project.containers()}
        assert running_workers(project) == [f"tcel-{project.name}-worker-1"]
