"""The pure parts of the exporter (`tcel up --metrics`): what a reading renders as, its login, what a scrape
says when the stack cannot be read, its spec and image, its login in the state file, the scrape configuration
`tcel metrics` prints, and its place in the Swarm plan."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from celery_cli import credentials, exporter
from celery_cli.monitor import scrape_config
from celery_cli.queues import QueueInfo
from celery_cli.settings import resolve_project
from celery_cli.stack import images, specs
from celery_cli.stack.base import UpReport
from celery_cli.task_record import TaskRecord

LOGIN = "tcel-ab12cd:metrics-secret"

PROJECT = resolve_project(Path("/tmp"), "demo")  # its authority is used only by a stack serving TLS


def rendered(reading: exporter.Reading) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self):
            return exporter.families(reading)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return generate_latest(registry).decode()


def test_a_reading_renders_queues_workers_and_tasks_by_name_and_state() -> None:
    reading = exporter.Reading(
        queues=[QueueInfo("celery", 4, 2, unacked=3), QueueInfo("idle", 7, 0, unacked=0)],
        workers={
            "celery@worker-1": {"pool": 10, "active": 2, "processed": 41, "maxrss": 2048, "held": Counter(celery=3)}
        },
        silent=["celery@worker-2"],
        tasks=[
            TaskRecord("a", "SUCCESS", name="tasks.add", started=10.0, finished=10.2),
            TaskRecord("b", "FAILURE", name="tasks.add", started=10.0, finished=12.0),
            TaskRecord("c", "PENDING", name="tasks.mul", sent=9.0),
        ],
        up={"broker": True, "workers": True, "backend": True},
    )
    text = rendered(reading)
    for line in (
        'tcel_queue_messages_ready{queue="idle"} 7.0',
        'tcel_queue_messages_unacknowledged{queue="celery"} 3.0',
        'tcel_queue_consumers{queue="celery"} 2.0',
        'tcel_worker_up{worker="celery@worker-1"} 1.0',
        'tcel_worker_up{worker="celery@worker-2"} 0.0',
        'tcel_worker_pool_processes{worker="celery@worker-1"} 10.0',
        'tcel_worker_active_tasks{worker="celery@worker-1"} 2.0',
        'tcel_worker_processed_total{worker="celery@worker-1"} 41.0',
        'tcel_worker_peak_memory_bytes{worker="celery@worker-1"} 2.097152e+06',
        'tcel_recent_tasks{name="tasks.add",state="SUCCESS"} 1.0',
        'tcel_recent_tasks{name="tasks.add",state="FAILURE"} 1.0',
        'tcel_recent_tasks{name="tasks.mul",state="QUEUED"} 1.0',
        'tcel_recent_task_runtime_seconds_bucket{le="0.5",name="tasks.add"} 1.0',
        'tcel_recent_task_runtime_seconds_bucket{le="+Inf",name="tasks.add"} 2.0',
        'tcel_recent_task_runtime_seconds_count{name="tasks.add"} 2.0',
        'tcel_exporter_source_up{source="broker"} 1.0',
    ):
        assert line in text, line


def test_a_stack_that_cannot_be_read_is_a_scrape_saying_so_not_an_error() -> None:
    reader = exporter.StackReader("amqp://tcel:secret@127.0.0.1:1//", "redis://:secret@127.0.0.1:1/0")
    reading = reader.read()
    assert reading.up == {"broker": False, "workers": False, "backend": False}
    assert reading.queues == [] and reading.workers == {} and reading.tasks == []
    assert 'tcel_exporter_source_up{source="broker"} 0.0' in rendered(reading)


def test_a_worker_that_stops_answering_is_reported_down_then_forgotten(monkeypatch) -> None:
    reader = exporter.StackReader("amqp://x@127.0.0.1:1//", "redis://127.0.0.1:1/0")
    reader.seen = {"celery@worker-1": 0.0, "celery@worker-2": time.time()}
    assert reader.read().silent == []  # the broadcast failed: nobody is known to be down
    monkeypatch.setattr(reader, "_workers", lambda: ({}, set()))  # a broadcast nobody answered
    assert reader.read().silent == ["celery@worker-2"]  # worker-1 was seen too long ago
    assert list(reader.seen) == ["celery@worker-2"]


def test_scrapes_serve_the_newest_reading_and_never_read_the_stack_themselves() -> None:
    class Counting:
        reads = 0

        def read(self) -> exporter.Reading:
            self.reads += 1
            return exporter.Reading(queues=[QueueInfo("celery", self.reads, 1)], up={"broker": True}, at=time.time())

    reader = Counting()
    collector = exporter.Collector(reader, interval=3600).start()  # type: ignore[arg-type]
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    scrapes = [generate_latest(registry).decode() for _ in range(20)]
    assert reader.reads == 1  # twenty scrapes, one reading
    assert all('tcel_queue_messages_ready{queue="celery"} 1.0' in text for text in scrapes)
    assert "tcel_exporter_reading_age_seconds" in scrapes[-1]


def test_a_scrape_before_any_reading_says_every_source_is_unknown(monkeypatch) -> None:
    class Never:
        def read(self) -> exporter.Reading:
            raise RuntimeError("a bug in a reading")

    monkeypatch.setattr(exporter, "FIRST_READING_WAIT", 0.1)
    text = "".join(m.name + str(m.samples) for m in exporter.Collector(Never(), interval=3600).start().collect())  # type: ignore[arg-type]
    assert "tcel_exporter_source_up" in text and "value=0.0" in text and "value=1.0" not in text


def call(app, authorization: str | None) -> tuple[str, bytes]:
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        **({"HTTP_AUTHORIZATION": authorization} if authorization else {}),
    }
    body = b"".join(app(environ, lambda code, headers: status.append(code)))
    return status[0], body


def test_the_exporter_answers_only_its_login() -> None:
    def inner(environ, start_response):
        start_response("200 OK", [])
        return [b"metrics"]

    app = exporter.guarded(inner, LOGIN)
    token = base64.b64encode(LOGIN.encode()).decode()
    assert call(app, f"Basic {token}") == ("200 OK", b"metrics")
    assert call(app, None)[0] == "401 Unauthorized"
    wrong = base64.b64encode(b"tcel-ab12cd:wrong").decode()
    assert call(app, f"Basic {wrong}")[0] == "401 Unauthorized"


def test_the_exporters_secrets_are_files_never_its_environment() -> None:
    access = credentials.generate().with_metrics_login()
    spec = specs.metrics(dataclasses.replace(access, metrics_port=19808), "tcel-metrics:abc", PROJECT)
    assert spec.service == "metrics" and spec.ports == {9808: ("127.0.0.1", 19808)}
    assert spec.environment == {
        "CELERY_BROKER_URL_FILE": "/run/secrets/celery_broker_url",
        "CELERY_RESULT_BACKEND_URL_FILE": "/run/secrets/celery_result_backend_url",
        "TCEL_METRICS_BASIC_AUTH_FILE": "/run/secrets/tcel_metrics_basic_auth",
    }
    login = f"{access.metrics_user}:{access.metrics_password}".encode()
    assert spec.files["/run/secrets/tcel_metrics_basic_auth"] == login
    assert b"@broker:5672" in spec.files["/run/secrets/celery_broker_url"]
    assert spec.command is None and access.metrics_password not in str(spec.environment)


def test_the_exporter_reads_its_secrets_from_the_files(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "login").write_text(LOGIN + "\n")
    monkeypatch.setenv("TCEL_METRICS_BASIC_AUTH_FILE", str(tmp_path / "login"))
    assert exporter.secret("TCEL_METRICS_BASIC_AUTH") == LOGIN
    monkeypatch.delenv("TCEL_METRICS_BASIC_AUTH_FILE")
    with pytest.raises(SystemExit):
        exporter.secret("TCEL_METRICS_BASIC_AUTH")


def test_the_exporter_image_holds_the_modules_it_and_the_autoscaler_import(tmp_path: Path) -> None:
    context = images.BuildContext.metrics()
    for relative, (content, _) in context.files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    # imported from the context alone, as the image runs it (python -m celery_cli.exporter)
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import celery_cli.exporter as e; "
        "import celery_cli.autoscaler as a; import celery_cli.stack.containers.scaling; "
        "import celery_cli.stack.swarm.scaling; "
        f"assert e.__file__.startswith({str(tmp_path)!r}) and a.__file__.startswith({str(tmp_path)!r}); "
        "print(sorted(m for m in sys.modules if m.startswith('celery_cli')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name = images.service_image_name("metrics", "python:3.12-slim")
    assert name.startswith("tcel-metrics:") and name != images.service_image_name("metrics", "python:3.13-slim")
    assert b"prometheus-client==" in context.files["constraints.txt"][0]


# The engines' front doors: the image reaches the scalers directly, never the stack's choice, readiness or registry.
NOT_IN_THE_IMAGE = {"stack/choice", "stack/containers/stack", "stack/swarm/stack", "stack/readiness", "task_registry"}


def test_every_tcel_import_in_the_exporter_image_even_inside_a_function_is_in_the_image() -> None:
    """Lazy imports escape the import test above (a missing broker_tls broke the exporter only once it read
    the workers); read every relative import of the image's modules instead, as the image would resolve it."""
    import ast

    files = images.BuildContext.metrics().files
    shipped = {relative.removeprefix("celery_cli/").removesuffix(".py") for relative in files}
    missing = set()
    for module in images.EXPORTER_MODULES + images.AUTOSCALER_MODULES:
        package = module.split("/")[:-1]
        for node in ast.walk(ast.parse((images.PACKAGE / f"{module}.py").read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            targets = ["/".join([*base, alias.name]) for alias in node.names] if not node.module else ["/".join(base)]
            for target in targets:
                exists = (images.PACKAGE / f"{target}.py").exists() or (images.PACKAGE / target).is_dir()
                if exists and target not in shipped and f"{target}/__init__" not in shipped:
                    missing.add(f"{module} -> {target}")
    assert {entry.split(" -> ")[1] for entry in missing} <= NOT_IN_THE_IMAGE, sorted(missing)


def test_the_exporters_login_is_generated_once_and_kept_in_the_state_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = resolve_project(tmp_path, "demo")
    plain = credentials.generate(project)
    credentials.save(project, plain)
    assert "TCEL_METRICS" not in credentials.state_file(project).read_text()
    with_login = plain.with_metrics_login()
    assert with_login.with_metrics_login() == with_login and with_login.metrics_user.startswith("tcel-")
    credentials.save(project, dataclasses.replace(with_login, metrics_port=19808))
    assert credentials.load(project) == dataclasses.replace(with_login, metrics_port=19808)


def test_up_json_and_the_scrape_configuration_mask_the_password_unless_asked() -> None:
    access = credentials.generate().with_metrics_login()
    shown = UpReport(access, metrics=True).as_dict("demo", "/state/demo.env")["metrics"]
    assert shown["url"] == "http://127.0.0.1:9808/metrics" and shown["user"] == access.metrics_user
    assert shown["password"] == credentials.mask(access.metrics_password)
    config = scrape_config("demo", access)
    assert access.metrics_password not in config
    assert "job_name: tcel-demo" in config and "targets: ['127.0.0.1:9808']" in config
    assert f"username: {access.metrics_user}" in config
    assert f"password: '{access.metrics_password}'" in scrape_config("demo", access, show_password=True)


def test_the_swarm_plan_keeps_a_running_exporter_and_its_published_port(tmp_path: Path) -> None:
    from celery_cli.stack.swarm.plan import plan
    from tests.unit.test_swarm_plan import FRESH, OPTIONS, SAVED, node, project, service

    planned = plan(
        project(tmp_path), OPTIONS, {"metrics": service("metrics", 19808)}, {}, SAVED, FRESH, node("m"), False
    )
    assert planned.with_metrics and planned.credentials.metrics_port == 19808 and planned.credentials.metrics_password
    assert not plan(project(tmp_path), OPTIONS, {}, {}, SAVED, FRESH, node("m"), False).with_metrics
    asked = dataclasses.replace(OPTIONS, metrics=True, metrics_port=29808)
    assert plan(project(tmp_path), asked, {}, {}, SAVED, FRESH, node("m"), False).credentials.metrics_port == 29808


def test_the_exporter_process_serves_behind_its_login_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import urllib.error
    import urllib.request

    from tests.conftest import free_port

    secrets = {
        "CELERY_BROKER_URL": "amqp://tcel:secret@127.0.0.1:1//",
        "CELERY_RESULT_BACKEND_URL": "redis://:secret@127.0.0.1:1/0",
        "TCEL_METRICS_BASIC_AUTH": LOGIN,
    }
    env = {**os.environ, "TCEL_METRICS_LISTEN_HOST": "127.0.0.1", "TCEL_METRICS_LISTEN_PORT": str(port := free_port())}
    for variable, value in secrets.items():
        (tmp_path / variable).write_text(value)
        env[f"{variable}_FILE"] = str(tmp_path / variable)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", "Basic " + base64.b64encode(LOGIN.encode()).decode())
    with subprocess.Popen([sys.executable, "-m", "celery_cli.exporter"], env=env, stdout=subprocess.PIPE) as served:
        try:
            assert served.stdout is not None and b"serving" in served.stdout.readline()
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert b'tcel_exporter_source_up{source="broker"} 0.0' in answer.read()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
            assert refused.value.code == 401
            for value in secrets.values():
                assert value not in " ".join(served.args)
        finally:
            served.send_signal(signal.SIGTERM)
            assert served.wait(timeout=5) == 0


def test_queue_wait_is_a_histogram_by_queue_and_the_oldest_queued_task_is_aged() -> None:
    tasks = [
        TaskRecord("a", "SUCCESS", name="t", sent=100.0, started=100.05, finished=101.0, queue="fast"),
        TaskRecord("b", "SUCCESS", name="t", sent=100.0, started=107.0, finished=108.0, queue="fast"),
        TaskRecord("c", "PENDING", name="t", sent=150.0, queue="slow"),
        TaskRecord("d", "PENDING", name="t", sent=190.0, queue="slow"),
    ]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in exporter.wait_families(tasks, now=200.0)
        for s in family.samples
    }
    assert samples[("tcel_recent_task_queue_wait_seconds_bucket", (("le", "0.1"), ("queue", "fast")))] == 1.0
    assert samples[("tcel_recent_task_queue_wait_seconds_bucket", (("le", "10.0"), ("queue", "fast")))] == 2.0
    assert samples[("tcel_recent_task_queue_wait_seconds_count", (("queue", "fast"),))] == 2.0
    assert samples[("tcel_recent_oldest_queued_seconds", (("queue", "slow"),))] == 50.0
    assert not any(
        name.startswith("tcel_recent_task_queue_wait") and ("queue", "slow") in labels for name, labels in samples
    )
