"""The small pure pieces behind the commands: URL masking, result records, log ordering, port bindings."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.credentials import mask_url
from celery_cli.errors import ExitCode, PortInUse
from celery_cli.stack.containers.docker_api import Container, binding
from celery_cli.stack.containers.docker_api import start_error as _start_error
from celery_cli.stack.log_merge import sortable as _sortable
from celery_cli.task_record import record as _record


def test_mask_url_hides_the_password_and_keeps_the_rest() -> None:
    masked = mask_url("amqp://tcel:s3cretpassword@127.0.0.1:5672//")
    assert masked == "amqp://tcel:s3…@127.0.0.1:5672//"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_failed_result_becomes_an_error_line_not_a_result() -> None:
    meta = {
        "status": "FAILURE",
        "result": {"exc_type": "TypeError", "exc_message": ["bad operand"]},
        "traceback": "Traceback ...",
        "name": "tasks.tsum",
        "args": [["a"]],
        "worker": "celery@w",
    }
    record = _record("id-1", json.dumps(meta), {"started": "10.0", "finished": "10.5"})
    assert record.state == "FAILURE" and record.result is None
    assert record.error == "TypeError: bad operand"
    assert record.runtime == 0.5 and record.args == '[["a"]]'


def test_a_task_known_only_to_the_index_is_queued_and_an_unknown_one_is_none() -> None:
    queued = _record("id-2", None, {"name": "tasks.add", "args": "[1, 2]", "sent": "5.0"})
    assert queued.state == "PENDING" and queued.queued and queued.name == "tasks.add"
    assert _record("id-3", None, {}) is None


def test_docker_log_times_sort_in_time_order_despite_trimmed_fractions() -> None:
    stamps = ["2026-01-01T00:00:01.5Z", "2026-01-01T00:00:01.123456789Z", "2026-01-01T00:00:01.12Z"]
    assert sorted(stamps, key=_sortable) == [stamps[2], stamps[1], stamps[0]]


def container(bindings: dict) -> Container:
    return Container(
        SimpleNamespace(
            attrs={"HostConfig": {"PortBindings": bindings}, "NetworkSettings": {}},
            labels={"io.tcel.service": "broker"},
            name="tcel-x-broker",
            status="created",
        )
    )


def _binding(found: Container | None, port: int) -> tuple[str | None, int | None]:
    return binding(found, port)


def test_binding_reads_address_and_port_of_a_published_port() -> None:
    assert _binding(container({"5672/tcp": [{"HostIp": "127.0.0.1", "HostPort": "25672"}]}), 5672) == (
        "127.0.0.1",
        25672,
    )
    assert _binding(container({}), 5672) == (None, None)
    assert _binding(None, 5672) == (None, None)


def test_a_port_clash_at_start_names_the_address_and_the_option() -> None:
    error = _start_error(
        container({}),
        Exception(
            "driver failed programming external connectivity: listen tcp4 127.0.0.1:5672: bind: address already in use"
        ),
    )
    assert isinstance(error, PortInUse) and error.exit_code == ExitCode.PORT_IN_USE
    assert "127.0.0.1:5672" in str(error) and "--broker-port" in str(error)


def test_expected_errors_reach_the_user_as_one_line_and_their_exit_code(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND_URL", raising=False)
    result = CliRunner().invoke(app, ["result", "some-id", "--project-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.NOT_RUNNING
    assert result.output.strip().splitlines()[-1].startswith("error: no stack")
    bad = CliRunner().invoke(app, ["results", "--backend-url", "nonsense://x"])
    assert bad.exit_code == ExitCode.USAGE and "invalid backend URL" in bad.output


def test_tables_say_queued_or_received_where_celery_says_pending() -> None:
    sent = _record("id-4", None, {"name": "tasks.add", "sent": "5.0"})
    received = _record("id-5", None, {"name": "tasks.add", "sent": "5.0", "received": "5.1"})
    started = _record("id-6", json.dumps({"status": "STARTED"}), {"sent": "5.0", "received": "5.1", "started": "5.2"})
    assert [r.state for r in (sent, received, started)] == ["PENDING", "PENDING", "STARTED"]
    assert [r.shown_state for r in (sent, received, started)] == ["QUEUED", "RECEIVED", "STARTED"]


def test_status_exit_code_says_not_up_degraded_or_healthy() -> None:
    from celery_cli.overview import Overview
    from celery_cli.stack.base import ServiceStatus

    assert Overview("p").exit_code == ExitCode.NOT_RUNNING
    running = ServiceStatus("broker", "tcel-p-broker", "broker", "running", True, "rabbitmq:4", [], None)
    assert Overview("p", services=[running]).exit_code == ExitCode.OK
    stopped = ServiceStatus("worker", "tcel-p-worker-1", "worker-1", "exited", False, "w", [], None)
    assert Overview("p", services=[running, stopped]).exit_code == ExitCode.DEGRADED


def test_log_lines_of_several_sources_come_in_time_order():
    from celery_cli.stack.log_merge import in_time_order

    lines = [
        ("2026-12-03T07:00:01.5Z", "worker-1", "b"),
        ("2026-12-03T07:00:01.25Z", "broker", "a"),
        ("2026-12-03T07:00:02Z", "worker-2", "c"),
    ]
    assert list(in_time_order(lines)) == [("broker", "a"), ("worker-1", "b"), ("worker-2", "c")]


def test_followed_logs_give_every_stream_s_lines_and_raise_a_stream_s_engine_error_as_one_line():
    """`logs -f` reads each container or service in a thread of its own: a refused request in one (the engine
    cannot produce that on demand) ends the command with tcel's one line, after the lines already read."""
    import docker

    from celery_cli.errors import EngineUnreachable, TcelError
    from celery_cli.stack.log_merge import merged

    def good():
        yield from [("broker", "up"), ("broker", "still up")]

    def bad():
        yield ("worker-1", "booting")
        raise docker.errors.APIError("logs", explanation="container gone")

    seen = []
    with pytest.raises(TcelError, match="the Docker engine refused: container gone"):
        for item in merged([good(), bad()]):
            seen.append(item)  # noqa: PERF402 - what came before the error is kept
    assert ("worker-1", "booting") in seen
    assert sorted(merged([good(), good()])) == sorted([("broker", "up"), ("broker", "still up")] * 2)

    def removed():  # a container gone between listing and reading: its stream ends, the others go on
        yield ("worker-2", "last words")
        raise docker.errors.NotFound("no such container")

    assert sorted(merged([good(), removed()])) == [("broker", "still up"), ("broker", "up"), ("worker-2", "last words")]

    def reset():  # the engine's socket reset mid-stream
        yield ("worker-1", "booting")
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(EngineUnreachable, match=r"cannot reach the Docker engine .*\(ConnectionResetError\)"):
        list(merged([reset()]))
