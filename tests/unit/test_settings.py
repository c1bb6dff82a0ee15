from pathlib import Path

import pytest

from celery_cli.errors import ExitCode, UsageError
from celery_cli.settings import (
    TEMPLATE_DIR,
    bind_setting,
    normalize_project_name,
    port_setting,
    resolve_project,
    setting,
)


@pytest.mark.parametrize(
    ("raw", "name"),
    [("My Project", "myproject"), ("_tmp.dir-1", "tmpdir-1"), ("celery_cli", "celery_cli"), ("ÄBC", "bc")],
)
def test_project_names_are_normalized_like_compose(raw: str, name: str) -> None:
    assert normalize_project_name(raw) == name


def test_a_name_with_nothing_usable_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        normalize_project_name("...")
    assert caught.value.exit_code == ExitCode.USAGE
    assert "--project-name" in str(caught.value)


def test_option_beats_env_beats_user_config_beats_default(isolated_config: Path, monkeypatch) -> None:
    assert setting("TCEL_BROKER_IMAGE") == "rabbitmq:4"
    isolated_config.parent.mkdir(parents=True)
    isolated_config.write_text("# stand-ins\nTCEL_BROKER_IMAGE=local/rabbitmq:3\n")
    assert setting("TCEL_BROKER_IMAGE") == "local/rabbitmq:3"
    monkeypatch.setenv("TCEL_BROKER_IMAGE", "env/rabbitmq:4")
    assert setting("TCEL_BROKER_IMAGE") == "env/rabbitmq:4"
    assert setting("TCEL_BROKER_IMAGE", "option/rabbitmq") == "option/rabbitmq"


@pytest.mark.parametrize("raw", ["0", "65536", "abc", "-1"])
def test_bad_ports_from_the_environment_are_usage_errors(raw: str, isolated_config, monkeypatch) -> None:
    monkeypatch.setenv("TCEL_BROKER_PORT", raw)
    with pytest.raises(UsageError, match="TCEL_BROKER_PORT"):
        port_setting("TCEL_BROKER_PORT", None)


def test_ports_default_to_the_seeds(isolated_config) -> None:
    assert port_setting("TCEL_BROKER_PORT", None) == 5672
    assert port_setting("TCEL_BACKEND_PORT", None) == 6379
    assert port_setting("TCEL_BACKEND_PORT", 16379) == 16379


def test_bind_defaults_to_loopback_and_rejects_host_names(isolated_config) -> None:
    assert bind_setting(None) == "127.0.0.1"
    assert bind_setting("0.0.0.0") == "0.0.0.0"
    with pytest.raises(UsageError, match="bind address"):
        bind_setting("localhost:80")


def test_project_without_a_dockerfile_uses_the_shipped_template(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TCEL_PROJECT_NAME", raising=False)
    project = resolve_project(tmp_path, None)
    assert project.name == normalize_project_name(tmp_path.name)
    assert project.build_context == TEMPLATE_DIR
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert project.build_context == tmp_path


def test_resource_names_carry_the_project_name(tmp_path: Path) -> None:
    project = resolve_project(tmp_path, "demo")
    assert project.container("broker") == "tcel-demo-broker"
    assert project.container("worker", 2) == "tcel-demo-worker-2"
    assert project.volume("backend") == "tcel-demo-backend-data"
    assert project.network == "tcel-demo"
    assert project.labels == {"io.tcel.project": "demo"}


def test_missing_project_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        resolve_project(tmp_path / "nope", None)


def test_env_file_takes_export_lines_and_refuses_control_characters(tmp_path: Path) -> None:
    from celery_cli.settings import env_line, read_env_file

    path = tmp_path / "state.env"
    path.write_text("# a comment\nexport TCEL_BROKER_IMAGE=rabbitmq:4\nTCEL_APP='tasks'\nno equals sign\n")
    assert read_env_file(path) == {"TCEL_BROKER_IMAGE": "rabbitmq:4", "TCEL_APP": "tasks"}
    for bad in ["TCEL_APP=a\x1b]52;c;aGk=\x07b\n", "TCEL_APP=a\x9bb\n", "TCEL X=1\n"]:
        path.write_text(bad)
        with pytest.raises(UsageError, match="line 1"):
            read_env_file(path)
    for value in ["a\nTCEL_BROKER_IMAGE=evil", "a\rb", "a\x1b[2Jb"]:
        with pytest.raises(UsageError, match="control character"):
            env_line("TCEL_WORKER_COMMAND", value)
    for value in ["sh -c 'echo x'", "'quoted'", " spaced ", '"', "plain"]:
        path.write_text(env_line("TCEL_WORKER_COMMAND", value))
        assert read_env_file(path) == {"TCEL_WORKER_COMMAND": value}


def test_a_project_name_too_long_for_swarms_names_is_refused_before_up_touches_the_engine(
    tmp_path: Path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from celery_cli.cli import app
    from celery_cli.names import SERVICES
    from celery_cli.settings import PROJECT_NAME_MAX

    longest = max((*SERVICES, "registry"), key=len)
    assert len(f"tcel-{'p' * PROJECT_NAME_MAX}-{longest}-{'0' * 12}") <= 64  # a Swarm secret's name
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    up = ["up", "--project-dir", str(tmp_path), "--project-name"]
    result = CliRunner().invoke(app, [*up, "p" * (PROJECT_NAME_MAX + 1)])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"more than the {PROJECT_NAME_MAX}" in result.output
    result = CliRunner().invoke(app, [*up, "p" * PROJECT_NAME_MAX])
    assert result.exit_code == ExitCode.ENGINE_UNREACHABLE, result.output
