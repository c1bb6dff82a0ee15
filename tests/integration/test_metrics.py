"""The Prometheus exporter (`tcel up --metrics`), on one stack started with it: its login and secrets, status,
`tcel metrics`, what a scrape shows, a real Prometheus (Debian's) scraping it with the login and answering a
PromQL query with the queue depth the test made; `down` removing it comes last."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StackProject, free_port, make_project
from tests.integration.test_flower import verified
from tests.tools import required_tool

IDLE_QUEUE = "idle"  # no worker consumes it: what is sent there stays ready
SENT_TO_IDLE = 3


@pytest.fixture(scope="module")
def metrics_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    """One stack with the exporter, and SENT_TO_IDLE tasks waiting in a queue no worker consumes."""
    with make_project(engine, tmp_path_factory.mktemp("metrics")) as project:
        project.env["TCEL_METRICS_PORT"] = str(free_port())
        result = project.tcel("up", "--metrics")
        assert result.code == 0, result.stderr
        for _ in range(SENT_TO_IDLE):
            sent = project.tcel("call", "tasks.add", "1", "2", "--queue", IDLE_QUEUE, "--quiet")
            assert sent.code == 0, sent.stderr
        yield project


def scrape(project: StackProject, login: tuple[str, str] | None) -> tuple[int, str]:
    access = project.connection  # over HTTPS on a stack that serves TLS (Swarm), verified by its authority
    request = urllib.request.Request(access.metrics_url())
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=verified(access)) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape_until(
    project: StackProject, login: tuple[str, str], wanted: list[str], timeout: float = 15
) -> tuple[int, str, list[str]]:
    """Scrape until every wanted line shows (the exporter reads every 2 s; a scrape serves the newest reading)."""
    deadline = time.monotonic() + timeout
    while True:
        status, text = scrape(project, login)
        missing = [line for line in wanted if line not in text]
        if status != 200 or not missing or time.monotonic() > deadline:
            return status, text, missing
        time.sleep(0.5)


def test_up_with_metrics_runs_the_exporter_behind_its_login_and_status_shows_it(metrics_stack: StackProject) -> None:
    access = metrics_stack.connection
    assert access.metrics_user.startswith("tcel-") and len(access.metrics_password) >= 24
    view = metrics_stack.tcel_json("status")
    exporter = [s for s in view["services"] if s["service"] == "metrics"]
    assert len(exporter) == 1 and exporter[0]["state"] == "running" and exporter[0]["ready"] is True, exporter
    assert exporter[0]["url"] == f"http://127.0.0.1:{access.metrics_port}/metrics"
    container = metrics_stack.engine.containers.get(f"tcel-{metrics_stack.name}-metrics")
    assert container.attrs["HostConfig"]["PortBindings"]["9808/tcp"][0]["HostIp"] == "127.0.0.1"
    inspected = json.dumps(container.attrs)
    for secret in (access.metrics_password, access.broker_password, access.backend_password):
        assert secret not in inspected  # files under /run/secrets, never in its environment or command
    assert scrape(metrics_stack, None)[0] == 401
    assert scrape(metrics_stack, (access.metrics_user, "wrong"))[0] == 401


def test_a_scrape_shows_queues_workers_and_tasks(metrics_stack: StackProject) -> None:
    access = metrics_stack.connection
    wanted = [
        f'tcel_queue_messages_ready{{queue="{IDLE_QUEUE}"}} {float(SENT_TO_IDLE)}',
        f'tcel_queue_consumers{{queue="{IDLE_QUEUE}"}} 0.0',
        'tcel_queue_consumers{queue="celery"} 1.0',
        'tcel_worker_up{worker="celery@worker-1"} 1.0',
        'tcel_worker_pool_processes{worker="celery@worker-1"}',
        f'tcel_recent_tasks{{name="tasks.add",state="QUEUED"}} {float(SENT_TO_IDLE)}',
        *(f'tcel_exporter_source_up{{source="{source}"}} 1.0' for source in ("broker", "workers", "backend")),
    ]
    status, text, missing = scrape_until(metrics_stack, (access.metrics_user, access.metrics_password), wanted)
    assert status == 200 and missing == [], text
    assert "tcel_exporter_reading_age_seconds" in text


def test_tcel_metrics_prints_the_url_a_masked_login_and_a_scrape_configuration(metrics_stack: StackProject) -> None:
    access = metrics_stack.connection
    shown = metrics_stack.tcel_json("metrics")
    assert shown["url"] == f"http://127.0.0.1:{access.metrics_port}/metrics" and shown["user"] == access.metrics_user
    assert access.metrics_password not in json.dumps(shown)
    assert f"127.0.0.1:{access.metrics_port}" in shown["scrape_config"]
    printed = metrics_stack.tcel("metrics", "--show-password")
    assert printed.code == 0 and access.metrics_password in printed.stdout


def test_prometheus_scrapes_the_exporter_and_promql_returns_the_queue_depth(
    metrics_stack: StackProject, tmp_path: Path
) -> None:
    prometheus = required_tool("prometheus", "Debian's prometheus package (scripts/lib.sh installs it)")
    access = metrics_stack.connection
    password_file = tmp_path / "password"
    password_file.write_text(access.metrics_password)
    password_file.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: tcel\n"
        f"    basic_auth: {{username: {access.metrics_user}, password_file: {password_file}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{access.metrics_port}']}}]\n"
    )
    port = free_port()
    command = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (tmp_path / "prometheus.log").open("w") as log, subprocess.Popen(command, stdout=log, stderr=log) as server:
        try:
            depth = _query_until(port, f'tcel_queue_messages_ready{{queue="{IDLE_QUEUE}"}}', SENT_TO_IDLE, server)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    assert depth == SENT_TO_IDLE, (tmp_path / "prometheus.log").read_text()[-2000:]


def _query_until(port: int, promql: str, wanted: float, server: subprocess.Popen, timeout: float = 60) -> float | None:
    """The value PromQL `promql` has over Prometheus's HTTP API, asked again until it is `wanted` or time is up."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline and server.poll() is None:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                result = json.loads(answer.read())["data"]["result"]
        except (OSError, KeyError):
            result = []
        value = float(result[0]["value"][1]) if result else None
        if value == wanted:
            return value
        time.sleep(0.5)
    return value


def test_a_taken_metrics_port_is_refused_before_anything_is_made(engine, tmp_path: Path) -> None:
    import socket

    with make_project(engine, tmp_path) as project, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = project.tcel("up", "--metrics", "--metrics-port", str(port))
        assert result.code == 5, result.stderr
        assert f"port {port} on 127.0.0.1 for the metrics is already in use" in result.stderr
        assert "--metrics-port" in result.stderr
        assert project.containers() == []


def test_down_removes_the_exporter(metrics_stack: StackProject) -> None:
    assert metrics_stack.tcel("down").code == 0
    assert not [c for c in metrics_stack.containers() if c.labels.get("io.tcel.service") == "metrics"]
    gone = metrics_stack.tcel("metrics")
    assert gone.code != 0 and "tcel up --metrics" in gone.stderr
