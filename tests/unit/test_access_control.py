"""The broker's definitions and the backend's ACL users that tcel writes (stack/access_control.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile

from celery_cli.credentials import ROLES, Credentials, role_user
from celery_cli.stack.access_control import broker_definitions, redis_acl
from celery_cli.stack.containers.secret_files import Owner, owner, tar_of

ACCESS = Credentials("tcel", "broker-pw", "backend-pw", role_passwords={role: f"{role}-pw" for role in ROLES})


def test_every_role_has_a_broker_user_whose_hash_is_rabbitmqs_salted_sha256() -> None:
    document = json.loads(broker_definitions(ACCESS))
    users = {user["name"]: user for user in document["users"]}
    assert set(users) == {"tcel", *(role_user(role) for role in ROLES)}
    for name, password in [("tcel", "broker-pw"), *((role_user(r), f"{r}-pw") for r in ROLES)]:
        assert users[name]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        raw = base64.b64decode(users[name]["password_hash"])
        salt, digest = raw[:4], raw[4:]
        assert digest == hashlib.sha256(salt + password.encode()).digest()
    assert users["tcel"]["tags"] == ["administrator"]
    assert all(users[role_user(role)]["tags"] == [] for role in ROLES)
    assert broker_definitions(ACCESS) == broker_definitions(ACCESS)  # the same file each `up`: no new container


def test_flowers_and_the_exporters_broker_users_cannot_write_to_the_default_or_task_exchanges() -> None:
    permissions = {p["user"]: p for p in json.loads(broker_definitions(ACCESS))["permissions"]}
    for role in ("flower", "metrics"):
        write = re.compile(permissions[role_user(role)]["write"])
        assert write.fullmatch("celery.pidbox") and write.fullmatch("celeryev.1234")
        for exchange in ("amq.default", "celery", "celeryev", "reply.celery.pidbox", "my-queue"):
            assert not write.fullmatch(exchange), (role, exchange)
    assert permissions[role_user("worker")]["write"] == ".*"


def test_redis_switches_default_off_and_keeps_only_hashes() -> None:
    acl = redis_acl(ACCESS)
    default = acl.splitlines()[0]
    assert default.startswith("user default off resetpass ") and "nopass" not in default and ">" not in default
    assert "-pw" not in acl and "requirepass" not in acl
    worker = next(line for line in acl.splitlines() if line.startswith(f"user {role_user('worker')} "))
    assert f"#{hashlib.sha256(b'worker-pw').hexdigest()}" in worker
    assert "-@dangerous" in worker and "-@scripting" in worker and "+fcall" in worker and "function" not in worker


def test_a_state_without_roles_makes_only_the_clis_users() -> None:
    old = Credentials("tcel", "broker-pw", "backend-pw")
    assert [user["name"] for user in json.loads(broker_definitions(old))["users"]] == ["tcel"]
    assert len(redis_acl(old).splitlines()) == 2


class FakeContainer:
    """A created container's config and files, as docker-py gives them (get_archive: a tar stream)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def get_archive(self, path: str):
        import docker

        if path not in self.files:
            raise docker.errors.NotFound("no such file")
        return [tar_of(path.rsplit("/", 1)[1], self.files[path].encode(), Owner(0, 0, 0o644))], {}


PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:999:998::/home/user:/bin/sh\n"
GROUP = "root:x:0:\nuser:x:998:\nother:x:50:\n"


def test_secret_files_go_to_the_images_user_by_name_or_number_readable_by_it_only() -> None:
    files = {"/etc/passwd": PASSWD, "/etc/group": GROUP}
    assert owner(FakeContainer(files), "user") == Owner(999, 998, 0o400)
    assert owner(FakeContainer(files), "999") == Owner(999, 998, 0o400)
    assert owner(FakeContainer(files), "user:other") == Owner(999, 50, 0o400)
    assert owner(FakeContainer({}), "1234:1234") == Owner(1234, 1234, 0o400)
    # no user (the broker, the backend: their entrypoint drops to their own user), or one that does not resolve
    assert owner(FakeContainer(files), "") == Owner(0, 0, 0o644)
    assert owner(FakeContainer(files), "ghost") == Owner(0, 0, 0o644)
    with tarfile.open(fileobj=io.BytesIO(tar_of("run/secrets/x", b"s", Owner(999, 998, 0o400)))) as tar:
        member = tar.next()
    assert member is not None and (member.uid, member.gid, member.mode) == (999, 998, 0o400)


def running_container(project, service: str, port: int, labels: dict[str, str]):
    from types import SimpleNamespace

    from celery_cli.names import LABEL_SERVICE
    from celery_cli.stack.containers.docker_api import Container

    bindings = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    raw = SimpleNamespace(
        name=project.container(service),
        status="running",
        labels={**project.labels, LABEL_SERVICE: service, **labels},
        attrs={"HostConfig": {"PortBindings": bindings}},
    )
    return Container(raw)


def test_scale_refuses_a_broker_and_backend_made_before_the_roles_and_names_up_as_the_way_out(
    tmp_path, monkeypatch
) -> None:
    """`tcel scale` leaves the broker and backend alone: made by a tcel from before each service had its own user,
    they would not let the added workers in. Refused in one line; 'tcel up' replaces them and keeps the data."""
    import pytest

    from celery_cli import credentials
    from celery_cli.errors import TcelError
    from celery_cli.names import LABEL_FILES
    from celery_cli.settings import Project
    from celery_cli.stack import specs
    from celery_cli.stack.base import UpOptions
    from celery_cli.stack.containers.plan import plan

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = Project(name="demo", directory=tmp_path)
    old = Credentials("tcel", "broker-pw", "backend-pw")  # a state file from before the roles
    credentials.save(project, old)
    options = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim", workers_only=True)
    existing = {
        c.name: c
        for c in (running_container(project, "broker", 5672, {}), running_container(project, "backend", 6379, {}))
    }
    with pytest.raises(TcelError, match="made with other logins") as refused:
        plan(None, project, options, existing)  # type: ignore[arg-type]  # refused before the engine is asked
    message = str(refused.value)
    assert "tcel-demo-broker and tcel-demo-backend were" in message and "run 'tcel up' first" in message
    assert "--volumes" not in message and "\n" not in message
    # a broker and backend made with the logins the state (with the roles' passwords) gives pass this check
    roles = credentials.load(project).with_role_passwords()
    credentials.save(project, roles)
    for service in ("broker", "backend"):
        spec = getattr(specs, service)(project, options, roles)
        existing[project.container(service)].raw.labels[LABEL_FILES] = spec.labels(project)[LABEL_FILES]
    monkeypatch.setattr("celery_cli.stack.containers.plan.image_exists", lambda client, image: True)
    assert plan(None, project, options, existing).credentials.role_passwords == roles.role_passwords  # type: ignore[arg-type]


class RefusingRedis:
    """A Redis client whose FUNCTION LOAD is refused as `error` says (the real refusal is in
    tests/integration/test_least_privilege.py; Redis 6 is not at hand)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def function_load(self, code: str, replace: bool = False) -> str:
        raise self.error


def test_a_backend_that_refuses_the_index_function_is_its_own_error_with_a_way_out() -> None:
    import pytest
    from redis.exceptions import NoPermissionError, ResponseError

    from celery_cli.errors import BackendRefused, ServiceUnreachable
    from celery_cli.result_store import ResultStore
    from celery_cli.task_index import load_function

    cases = {
        NoPermissionError("this user has no permissions to run the 'function|load' command"): "'tcel down' then",
        ResponseError("unknown command 'FUNCTION', with args beginning with: 'LOAD'"): "Redis 7 or newer",
        ResponseError("READONLY You can't write against a read only replica."): "tcel logs backend",
    }
    for error, way_out in cases.items():
        store = ResultStore("redis://tcel:secret-password@127.0.0.1:6379/0")
        store.__dict__["client"] = RefusingRedis(error)
        with pytest.raises(BackendRefused) as refused:
            load_function(store)
        assert not isinstance(refused.value, ServiceUnreachable)  # readiness would keep waiting for it
        message = str(refused.value)
        assert "backend at redis://tcel:se…@127.0.0.1:6379/0" in message and "FUNCTION LOAD" in message
        assert str(error) in message and way_out in message and "secret-password" not in message


def test_the_exporters_backend_user_reads_every_key_but_writes_only_the_autoscalers() -> None:
    from celery_cli.names import AUTOSCALE_KEY

    metrics = next(line for line in redis_acl(ACCESS).splitlines() if line.startswith(f"user {role_user('metrics')} "))
    assert "%R~*" in metrics.split() and f"%W~{AUTOSCALE_KEY}" in metrics.split()
    assert "~*" not in metrics.split() and "%RW~*" not in metrics  # no key both readable and writable but its own
    assert "+set" in metrics.split() and "+@write" not in metrics


class NoFunctionRedis(RefusingRedis):
    """A backend without the index's function (FCALL: "Function not found") that refuses to load it."""

    def pipeline(self, transaction: bool = False) -> NoFunctionRedis:
        return self

    def fcall(self, *args: object) -> None:
        pass

    def execute(self) -> list[object]:
        from redis.exceptions import ResponseError

        raise ResponseError("Function not found")


def test_a_task_sent_to_a_backend_that_refuses_the_index_function_is_sent_with_a_warning() -> None:
    """`call` records a task after sending it: the refusal is a warning (the task is on its way), not a failure."""
    from redis.exceptions import NoPermissionError

    from celery_cli.call import _index
    from celery_cli.result_store import ResultStore
    from celery_cli.task_call import TaskCall

    store = ResultStore("redis://tcel:secret-password@127.0.0.1:6379/0")
    store.__dict__["client"] = NoFunctionRedis(NoPermissionError("this user has no permissions to run 'function'"))
    warning = _index(store, "task-1", TaskCall("tasks.add", [1, 2]), 1.0)
    assert warning is not None and warning.startswith("task task-1 was sent, but the backend at")
    assert "FUNCTION LOAD" in warning


def test_flowers_and_the_exporters_backend_users_may_not_publish() -> None:
    for role in ("flower", "metrics"):
        line = next(line for line in redis_acl(ACCESS).splitlines() if line.startswith(f"user {role_user(role)} "))
        assert line.split()[-2:] == ["-publish", "-spublish"], line  # after +@pubsub, which would allow them
