"""What the registry tcel runs on Swarm, and its mirrors, are given (registry_config.py): a bcrypt htpasswd line
the login matches, TLS and the login in their configuration, the mirror reaching the central registry over TLS
with the login, every secret in a file (nothing in environment or command), and the login kept in the state."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from celery_cli import credentials
from celery_cli.settings import resolve_project
from celery_cli.stack.swarm import registry_config
from celery_cli.stack.swarm.docker_api import Node


@pytest.fixture
def project(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return resolve_project(tmp_path, "regtest")


def node(hostname: str, address: str) -> Node:
    raw = MagicMock()
    raw.attrs = {"Description": {"Hostname": hostname}, "Status": {"Addr": address}}
    return Node(raw)


def test_the_htpasswd_line_is_bcrypt_and_matches_the_login_only():
    import bcrypt

    user, _, hashed = registry_config.htpasswd("tcel-abc", "s3cret").rstrip(b"\n").partition(b":")
    assert user == b"tcel-abc" and hashed.startswith(b"$2")
    assert bcrypt.checkpw(b"s3cret", hashed) and not bcrypt.checkpw(b"other", hashed)


def test_central_registry_serves_tls_behind_the_login_and_proxies_nothing(project):
    access = credentials.generate().with_registry_login()
    spec = registry_config.central_spec(project, "registry:2", 5000, access, [node("vm", "10.0.0.1")])
    config = spec.files[registry_config.CONFIG].decode()
    assert f'certificate: "{registry_config.CERTIFICATE}"' in config and f'key: "{registry_config.KEY}"' in config
    assert f'path: "{registry_config.HTPASSWD}"' in config and "proxy:" not in config
    assert access.registry_password not in config
    assert {registry_config.CERTIFICATE, registry_config.KEY, registry_config.HTPASSWD} <= spec.files.keys()


def test_a_mirror_reaches_the_central_registry_over_tls_with_the_login(project):
    access = credentials.generate().with_registry_login()
    spec = registry_config.mirror_spec(project, "registry:2", 5000, access, [node("n1", "10.0.0.11")])
    config = spec.files[registry_config.CONFIG].decode()
    login = f"{access.registry_user}:{access.registry_password}"
    assert f'remoteurl: "https://{login}@registry:5000"' in config
    assert spec.environment == {"SSL_CERT_FILE": registry_config.AUTHORITY}
    assert registry_config.AUTHORITY in spec.files and spec.health is not None
    assert spec.health[-1].startswith("https://127.0.0.1:5000/")
    shown = json.dumps([spec.environment, spec.command, list(spec.health)])
    assert access.registry_password not in shown


def test_certificates_name_the_alias_loopback_and_every_node():
    found = registry_config.names([node("n1", "10.0.0.11"), node("n2", "10.0.0.12")], "registry-mirror")
    assert found == ["registry-mirror", "127.0.0.1", "localhost", "n1", "10.0.0.11", "n2", "10.0.0.12"]


def test_the_registry_login_is_kept_in_the_state_file(project):
    access = credentials.generate().with_registry_login()
    assert access.registry_user.startswith("tcel-") and len(access.registry_password) >= 24
    credentials.save(project, access)
    loaded = credentials.load(project)
    assert loaded is not None and loaded.registry_password == access.registry_password
    assert loaded.with_registry_login() == loaded  # kept, not made again
