"""The real CLI in a subprocess, for what needs no Docker engine: help, usage errors, engine unreachable."""

import pytest

from tests.conftest import run_tcel

COMMANDS = [
    "init",
    "up",
    "down",
    "logs",
    "scale",
    "env",
    "status",
    "watch",
    "flower",
    "metrics",
    "call",
    "add",
    "tsum",
    "retry",
    "chain",
    "group",
    "chord",
    "workflow",
    "result",
    "results",
    "revoke",
    "purge",
    "bench",
    "inspect",
    "control",
    "beat",
]


def test_help_lists_every_command_with_its_summary() -> None:
    result = run_tcel("--help")
    assert result.code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == COMMANDS


def test_up_help_explains_ports_and_their_env_vars() -> None:
    result = run_tcel("up", "--help")
    assert result.code == 0
    assert "--broker-port" in result.stdout and "TCEL_BROKER_PORT" in result.stdout


def test_out_of_range_port_option_is_a_usage_error() -> None:
    result = run_tcel("up", "--broker-port", "70000")
    assert result.code == 2
    assert "--broker-port" in result.stderr


def test_bad_port_in_env_is_one_line_and_exit_2() -> None:
    result = run_tcel("up", env={"TCEL_BROKER_PORT": "abc"})
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid port 'abc' from TCEL_BROKER_PORT: use a number from 1 to 65535"
    ]


@pytest.mark.parametrize("command", [["status"], ["down"], ["up", "--no-wait"]])
def test_unreachable_engine_is_one_clear_line_without_traceback(command: list[str], tmp_path) -> None:
    result = run_tcel(*command, "--project-dir", str(tmp_path), env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.code == 3
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach the Docker engine at tcp://127.0.0.1:1")
    assert "DOCKER_HOST" in lines[-1]


def test_the_console_script_is_the_same_cli() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "tcel"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, env={"COLUMNS": "200"})
    assert done.returncode == 0
    assert done.stdout.replace("tcel", "X") == run_tcel("--help").stdout.replace("python -m celery_cli", "X")
