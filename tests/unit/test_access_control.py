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
