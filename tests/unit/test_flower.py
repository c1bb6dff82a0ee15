"""The pure parts of Flower as a service: its login in the state file, its spec, its image's name, masking."""

import dataclasses
import hashlib
from pathlib import Path
from typing import ClassVar

import pytest

from celery_cli import credentials
from celery_cli.settings import resolve_project
from celery_cli.stack import images, specs
from celery_cli.stack.base import UpReport, flower_dict

PROJECT = resolve_project(Path("/tmp"), "demo")  # its authority is used only by a stack serving TLS


def test_flower_login_is_generated_once_and_kept_in_the_state_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = resolve_project(tmp_path, "demo")
    plain = credentials.generate(project)
    credentials.save(project, plain)
    assert "TCEL_FLOWER" not in credentials.state_file(project).read_text()  # no Flower asked for: no login
    assert credentials.load(project) == plain
    with_login = plain.with_flower_login()
    assert with_login.flower_user.startswith("tcel-") and len(with_login.flower_password) >= 24
    assert with_login.with_flower_login() == with_login  # kept, never regenerated
    assert plain.with_flower_login().flower_password != with_login.flower_password
    credentials.save(project, dataclasses.replace(with_login, flower_port=15555))
    text = credentials.state_file(project).read_text()
    assert f"TCEL_FLOWER_USER={with_login.flower_user}\n" in text
    assert f"TCEL_FLOWER_PASSWORD={with_login.flower_password}\n" in text
    loaded = credentials.load(project)
    assert loaded is not None and loaded.flower_port == 15555
    assert loaded.flower_url() == "http://127.0.0.1:15555/"


ACCESS = credentials.Credentials(
    "tcel",
    "broker-secret",
    "backend-secret",
    bind="127.0.0.1",
    flower_user="tcel-ab12cd",
    flower_password="flower-secret",
    flower_port=15555,
)
SECRETS = {
    "/run/secrets/celery_broker_url": b"amqp://tcel:broker-secret@broker:5672//",
    "/run/secrets/celery_result_backend_url": b"redis://tcel:backend-secret@backend:6379/0",
    "/run/secrets/tcel_flower_basic_auth": b"tcel-ab12cd:flower-secret",
}


def test_flower_spec_reaches_the_stack_by_its_aliases_with_its_secrets_in_files_only() -> None:
    spec = specs.flower(ACCESS, "tcel-flower:abc", PROJECT)
    assert (spec.service, spec.number, spec.key, spec.image) == ("flower", None, "flower", "tcel-flower:abc")
    assert spec.files == SECRETS
    assert spec.environment == {
        "CELERY_BROKER_URL_FILE": "/run/secrets/celery_broker_url",
        "CELERY_RESULT_BACKEND_URL_FILE": "/run/secrets/celery_result_backend_url",
        "TCEL_FLOWER_BASIC_AUTH_FILE": "/run/secrets/tcel_flower_basic_auth",
    }
    assert not any(key.startswith("FLOWER_") for key in spec.environment)  # Flower would take it for an option
    assert spec.ports == {5555: ("127.0.0.1", 15555)}
    assert spec.command is None  # the image's: no secret on a command line
    assert spec.labels(resolve_project(Path("/tmp"), "demo"))["io.tcel.service"] == "flower"


def test_on_swarm_flowers_files_become_its_secrets_and_nothing_secret_is_left_in_its_environment() -> None:
    moved = specs.secrets_in_files(specs.flower(ACCESS, "tcel-flower:abc", PROJECT))
    assert moved.files == SECRETS  # swarm/service_spec.create_service makes one Docker secret per file, at its path
    shown = repr((moved.environment, moved.command))
    for secret in ("broker-secret", "backend-secret", "flower-secret"):
        assert secret not in shown


@pytest.fixture
def flower_modules(monkeypatch) -> dict:
    """Stand-ins for the two Flower and Tornado names flowerconfig.py patches (Flower is only in its image)."""
    import sys
    import types

    calls: dict = {}
    metrics = types.SimpleNamespace(get=lambda handler: "metrics")
    web = types.SimpleNamespace(authenticated=lambda method: calls.setdefault("authenticated", method))
    monkeypatch.setitem(sys.modules, "flower", types.ModuleType("flower"))
    monkeypatch.setitem(
        sys.modules, "flower.views", types.SimpleNamespace(monitor=types.SimpleNamespace(Metrics=metrics))
    )
    monkeypatch.setitem(sys.modules, "tornado", types.SimpleNamespace(web=web))
    return calls


def test_flowerconfig_reads_the_urls_and_login_from_the_secret_files(
    tmp_path: Path, monkeypatch, flower_modules: dict
) -> None:
    """As `celery flower` runs it (Tornado executes the file): the login becomes basic_auth, the URLs the
    settings of Celery's current app, and /metrics is put behind the login."""
    from celery import Celery
    from celery._state import get_current_app

    spec = specs.flower(ACCESS, "tcel-flower:abc", PROJECT)
    for key, path in spec.environment.items():  # the files, here under tmp_path
        (tmp_path / Path(path).name).write_bytes(spec.files[path])
        monkeypatch.setenv(key, str(tmp_path / Path(path).name))
    for variable in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "FLOWER_BASIC_AUTH"):
        monkeypatch.delenv(variable, raising=False)
    before = get_current_app()
    app = Celery("flower-under-test", set_as_current=True)
    try:
        config: dict = {}
        exec((images.FLOWER_IMAGE_FILES / "flowerconfig.py").read_text(), config, config)
        assert config["basic_auth"] == ["tcel-ab12cd:flower-secret"]
        assert app.conf.broker_url == "amqp://tcel:broker-secret@broker:5672//"
        assert app.conf.result_backend == "redis://tcel:backend-secret@backend:6379/0"
        assert flower_modules["authenticated"]("handler") == "metrics"
    finally:
        before.set_current()


def test_up_report_and_flower_json_mask_the_password_unless_asked() -> None:
    access = credentials.generate().with_flower_login()
    shown = UpReport(access, flower=True).as_dict("demo", "/state/demo.env")["flower"]
    assert shown["url"] == "http://127.0.0.1:5555/" and shown["user"] == access.flower_user
    assert shown["password"] == credentials.mask(access.flower_password) != access.flower_password
    assert UpReport(access).as_dict("demo", "/state/demo.env")["flower"] is None
    assert flower_dict(access, show_password=True)["password"] == access.flower_password


@pytest.mark.parametrize("changed", ["Dockerfile", "flowerconfig.py", "constraints.txt"])
def test_flower_image_name_covers_every_file_that_goes_into_it(changed: str, monkeypatch) -> None:
    context = images.BuildContext.flower()
    assert set(context.files) == {"Dockerfile", "flowerconfig.py", "constraints.txt"}
    assert b"flower==2.2." in context.files["constraints.txt"][0]
    before = context.image_name("python:3.12-slim", "tcel-flower")
    assert before.startswith("tcel-flower:")
    assert context.image_name("python:3.13-slim", "tcel-flower") != before
    content, mode = context.files[changed]
    edited = images.BuildContext({**context.files, changed: (content + b"\n# changed\n", mode)})
    assert edited.image_name("python:3.12-slim", "tcel-flower") != before


def test_status_table_shows_flowers_url_in_place_of_its_ports() -> None:
    from rich.console import Console

    from celery_cli.stack.base import ServiceStatus
    from celery_cli.tables import services_table

    flower = ServiceStatus(
        "flower",
        "tcel-demo-flower",
        "flower",
        "running",
        True,
        "tcel-flower:abc",
        ["127.0.0.1:5555->5555/tcp"],
        None,
        url="http://127.0.0.1:5555/",
    )
    console = Console(width=200, record=True)
    console.print(services_table("demo", [flower]))
    assert "http://127.0.0.1:5555/" in console.export_text()


class _FlowerService:
    attrs: ClassVar[dict] = {"Spec": {"EndpointSpec": {"Ports": [{"PublishedPort": 15999, "TargetPort": 5555}]}}}


def _flower_access(tmp_path: Path, node: str, existing: dict, flower_port: int | None, kept: int) -> tuple:
    """Flower's port and login as `up --swarm` plans them, with the data node on this machine (`manager`) or not."""
    from celery_cli.stack.base import UpOptions
    from celery_cli.stack.ports import EVERY_INTERFACE, PortChooser
    from celery_cli.stack.swarm.docker_api import Service
    from celery_cli.stack.swarm.plan import flower_access

    ports = PortChooser(resolve_project(tmp_path, "demo").name, EVERY_INTERFACE, here=node == "manager")
    options = UpOptions(
        "127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim", flower=True, flower_port=flower_port
    )
    access = dataclasses.replace(credentials.generate(), bind="0.0.0.0", flower_port=kept)
    running = {kind: Service(raw) for kind, raw in existing.items()}
    return flower_access(ports, options, running, access), ports.notes


def test_swarm_flower_keeps_its_published_port_and_login_and_takes_the_asked_or_kept_port(tmp_path: Path) -> None:
    from celery_cli.stack.ports import free_port

    access, notes = _flower_access(tmp_path, "manager", {"flower": _FlowerService()}, 16000, 5555)
    assert access.flower_port == 15999 and notes == []  # what the running service publishes wins
    assert access.flower_user.startswith("tcel-") and len(access.flower_password) >= 24
    free = free_port("0.0.0.0")
    assert _flower_access(tmp_path, "manager", {}, None, free)[0].flower_port == free  # the kept one, free here
    assert _flower_access(tmp_path, "other-node", {}, 16001, 5555)[0].flower_port == 16001


def test_swarm_flower_refuses_an_asked_port_taken_here_and_moves_off_a_kept_one(tmp_path: Path) -> None:
    import socket

    from celery_cli.errors import PortInUse

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as refused:
            _flower_access(tmp_path, "manager", {}, port, 5555)
        assert f"port {port} on 0.0.0.0 for the flower is already in use" in str(refused.value)
        moved, notes = _flower_access(tmp_path, "manager", {}, None, port)
        assert moved.flower_port != port and notes and f"port {port} is taken" in notes[0]
        # another data node: this machine's ports say nothing about it
        assert _flower_access(tmp_path, "other-node", {}, None, port)[0].flower_port == port


def test_no_service_of_the_stack_carries_a_password_in_its_environment_or_command() -> None:
    """On plain containers as on Swarm (issue 25 item 3): passwords are files put in before start."""
    from celery_cli.stack.base import UpOptions

    options = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim", concurrency=2)
    project = resolve_project(Path("/tmp"), "demo")
    every = [
        specs.broker(project, options, ACCESS),
        specs.backend(project, options, ACCESS),
        specs.worker(1, options, ACCESS, "tcel-worker:abc"),
        specs.beat(ACCESS, "tcel-worker:abc"),
        specs.flower(ACCESS, "tcel-flower:abc", PROJECT),
    ]
    for spec in every:
        shown = repr((spec.environment, spec.command))
        for secret in ("broker-secret", "backend-secret", "flower-secret"):
            assert secret not in shown, (spec.service, shown)
        # the backend holds the passwords' SHA-256 only (its ACL users), the others them in files
        hashed = hashlib.sha256(b"backend-secret").hexdigest()
        kept = ("broker-secret", "backend-secret", hashed)
        assert any(secret.encode() in b"".join(spec.files.values()) for secret in kept)
    worker = every[2]
    assert worker.environment["CELERY_BROKER_URL_FILE"] == "/run/secrets/celery_broker_url"
    assert worker.files["/run/secrets/celery_broker_url"] == b"amqp://tcel:broker-secret@broker:5672//"
    assert worker.environment["CELERY_WORKER_CONCURRENCY"] == "2"
    broker = every[0].files[specs.RABBITMQ_USER_CONF].decode()
    assert "default_user = tcel" in broker and "default_pass = broker-secret" in broker
