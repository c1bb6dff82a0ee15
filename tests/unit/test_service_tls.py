"""A stack published beyond loopback (or on Swarm) serves TLS from its own authority: its URLs, its services'
specs. The handshakes themselves are tested on a real stack (tests/integration/test_service_tls.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509

from celery_cli import credentials, tls_ca
from celery_cli.names import LABEL_FILES
from celery_cli.settings import resolve_project
from celery_cli.stack import specs, tls
from celery_cli.stack.base import UpOptions


@pytest.fixture
def project(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return resolve_project(tmp_path, "demo")


def test_a_stack_on_loopback_stays_plain_and_one_beyond_it_serves_tls(project) -> None:
    plain = credentials.generate(project).with_ports("127.0.0.1", 15672, 16379)
    assert not plain.tls and plain.broker_url().startswith("amqp://") and plain.backend_url().startswith("redis://")
    assert "TCEL_CA_FILE" not in plain.on_host()
    wide = plain.with_ports("0.0.0.0", 15672, 16379)
    ca = str(tls_ca.ca_file(project))
    assert wide.tls
    assert wide.broker_url() == f"amqps://tcel:{wide.broker_password}@127.0.0.1:15672//"
    assert wide.backend_url().endswith(f"@127.0.0.1:16379/0?ssl_cert_reqs=required&ssl_ca_certs={ca}")
    assert wide.backend_url().startswith("rediss://")
    assert wide.on_host()["TCEL_CA_FILE"] == ca
    inside = wide.inside_network()
    assert inside["CELERY_BROKER_URL"].startswith("amqps://") and inside["CELERY_BROKER_URL"].endswith("@broker:5671//")
    assert inside["CELERY_RESULT_BACKEND"].endswith(
        "@backend:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/run/secrets/tcel_ca.crt"
    )
    assert wide.flower_url().startswith("https://") and wide.metrics_url().startswith("https://")


def test_the_services_of_a_tls_stack_get_certificates_and_the_authority_never_in_their_environment(project) -> None:
    access = credentials.generate(project).with_ports("0.0.0.0", 15672, 16379).with_flower_login()
    options = UpOptions("0.0.0.0", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim")
    broker = specs.broker(project, options, access)
    assert broker.ports == {5671: ("0.0.0.0", 15672)}  # plain AMQP not published
    conf = broker.files[tls.BROKER_TLS_CONF].decode()
    assert "listeners.tcp = none" in conf and "listeners.ssl.default = 5671" in conf
    assert broker.owners == {tls.KEY_FILE: 999}
    assert specs.backend(project, options, access).owners == {tls.KEY_FILE: 0}  # root's, copied for redis
    certificate = x509.load_pem_x509_certificate(broker.files[tls.CERT_FILE])
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"broker", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert broker.files[credentials.INSIDE_CA_FILE] == Path(access.ca_file).read_bytes()
    backend = specs.backend(project, options, access)
    assert backend.ports == {6379: ("0.0.0.0", 16379)}
    assert "port 0\ntls-port 6379\n" in backend.files[specs.REDIS_CONF].decode()
    worker = specs.worker(1, options, access, "tcel-worker:abc")
    flower = specs.flower(access, "tcel-flower:abc", project)
    for spec in (broker, backend, worker, flower):
        assert not any(b"PRIVATE KEY" in value.encode() for value in spec.environment.values())
    assert worker.environment["TCEL_CA_FILE"] == credentials.INSIDE_CA_FILE
    assert tls.KEY_FILE not in worker.files  # a client holds the authority's certificate only
    assert flower.environment["TCEL_TLS_CERT_FILE"] == tls.CERT_FILE and flower.owners == {tls.KEY_FILE: 999}
    on_loopback = dataclasses.replace(access, bind="127.0.0.1")
    assert specs.broker(project, options, on_loopback).ports == {5672: ("127.0.0.1", 15672)}
    assert not specs.worker(1, options, on_loopback, "tcel-worker:abc").owners


def test_a_new_certificate_alone_does_not_make_a_running_service_stale(project) -> None:
    """Each `up` issues new certificates and keys; containers are replaced when their logins or configuration
    change (the files' digest label), not at every `up` of a stack that serves TLS."""
    access = credentials.generate(project).with_ports("0.0.0.0", 15672, 16379)
    options = UpOptions("0.0.0.0", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim")
    first, again = specs.broker(project, options, access), specs.broker(project, options, access)
    assert first.files[tls.KEY_FILE] != again.files[tls.KEY_FILE]
    assert first.labels(project)[LABEL_FILES] == again.labels(project)[LABEL_FILES]
    other_login = specs.broker(project, options, dataclasses.replace(access, broker_password="another"))
    assert other_login.labels(project)[LABEL_FILES] != first.labels(project)[LABEL_FILES]
