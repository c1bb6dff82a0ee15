"""The pure parts of a Redis broker: which broker a URL names, its URLs and state, the broker's container spec,
kombu's priority lists, the warning for an ETA beyond the visibility timeout, and what `up` refuses on it."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from celery_cli import credentials
from celery_cli.broker_kind import eta_warning, is_redis, kind_of, rabbitmq_only, transport_options
from celery_cli.commands.up_options import broker_option, redis_refusals
from celery_cli.errors import UsageError
from celery_cli.redis_queues import priority_lists
from celery_cli.settings import resolve_project
from celery_cli.stack import specs
from celery_cli.stack.base import UpOptions
from celery_cli.tls_ca import ca_file

OPTIONS = UpOptions("127.0.0.1", None, None, "rabbitmq:4", "redis:7", "python:3.12-slim", broker="redis")
REDIS = credentials.Credentials("tcel", "bpw", "rpw", broker_port=15672, backend_port=16379, broker="redis")


def test_the_broker_kind_is_told_from_the_urls_scheme() -> None:
    assert kind_of("redis://:pw@127.0.0.1:6379/0") == "redis" and is_redis("rediss://h:6380/0")
    assert kind_of("amqp://tcel:pw@127.0.0.1:5672//") == "rabbitmq" and not is_redis("amqps://h//")
    assert kind_of("redis://a:1/0;redis://b:1/0") == "redis"  # kombu's failover list: the first one
    assert transport_options("amqp://h//") == {}


def test_transport_options_carry_the_visibility_timeout(monkeypatch) -> None:
    monkeypatch.delenv("TCEL_VISIBILITY_TIMEOUT", raising=False)
    assert transport_options("redis://h/0") == {"visibility_timeout": 3600}
    monkeypatch.setenv("TCEL_VISIBILITY_TIMEOUT", "5")
    assert transport_options("redis://h/0") == {"visibility_timeout": 5}
    monkeypatch.setenv("TCEL_VISIBILITY_TIMEOUT", "soon")
    assert transport_options("redis://h/0") == {"visibility_timeout": 3600}


def test_a_redis_broker_url_names_its_acl_user_and_points_at_the_broker_alias_inside() -> None:
    assert REDIS.broker_url() == "redis://tcel:bpw@127.0.0.1:15672/0"
    assert REDIS.inside_network()["CELERY_BROKER_URL"] == "redis://tcel:bpw@broker:5672/0"  # no role password yet
    roles = REDIS.with_role_passwords()
    worker_password = roles.role_password("worker")
    assert roles.inside_network()["CELERY_BROKER_URL"] == f"redis://tcel-worker:{worker_password}@broker:5672/0"
    assert replace(REDIS, broker="rabbitmq").broker_url() == "amqp://tcel:bpw@127.0.0.1:15672//"


def test_the_broker_is_kept_in_the_state_file_and_not_overridden_by_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = resolve_project(tmp_path, "demo")
    credentials.save(project, REDIS, {"TCEL_BROKER": "rabbitmq", "TCEL_BEAT": ""})
    assert credentials.load(project) == replace(REDIS, ca_file=str(ca_file(project)))
    assert credentials.kept(project)["TCEL_BROKER"] == "redis"
    credentials.save(project, replace(REDIS, broker="rabbitmq"))
    assert credentials.load(project).broker == "rabbitmq"  # type: ignore[union-attr]


def test_the_redis_brokers_container_has_acl_users_appendonly_its_own_volume_and_no_password_outside_a_file() -> None:
    project = resolve_project(Path("/tmp"), "demo")
    roles = REDIS.with_role_passwords()
    spec = specs.broker(project, OPTIONS, roles)
    assert (spec.service, spec.image, spec.command) == ("broker", "redis:7", ["redis-server", specs.REDIS_CONF])
    conf = spec.files[specs.REDIS_CONF].decode()
    assert "appendonly yes\n" in conf and "port 5672\n" in conf and "requirepass" not in conf
    users = {line.split()[1]: line for line in conf.splitlines() if line.startswith("user ")}
    assert set(users) == {"default", "tcel", "tcel-worker"}  # Flower, metrics and beat are refused on Redis
    assert users["default"].startswith("user default off resetpass ")
    assert f"#{hashlib.sha256(b'bpw').hexdigest()}" in users["tcel"] and "+@all" in users["tcel"]
    worker_hash = hashlib.sha256(roles.role_password("worker").encode()).hexdigest()
    assert f"#{worker_hash}" in users["tcel-worker"] and "-@dangerous" in users["tcel-worker"]
    assert "bpw" not in conf and roles.role_password("worker") not in conf  # hashes only
    assert spec.volumes == {"tcel-demo-redis-broker-data": "/data"}
    assert "bpw" not in repr(spec.environment) and "bpw" not in repr(spec.command)
    rabbitmq = specs.broker(project, OPTIONS, replace(REDIS, broker="rabbitmq"))
    assert rabbitmq.image == "rabbitmq:4" and rabbitmq.volumes == {"tcel-demo-broker-data": "/var/lib/rabbitmq"}


def test_a_queue_is_kept_in_one_list_per_priority_step_as_kombu_keeps_it() -> None:
    from kombu.transport.redis import Channel

    assert priority_lists("celery") == ["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"]
    assert [Channel._q_for_pri(Channel.__new__(Channel), "celery", p) for p in (0, 3, 6, 9)] == priority_lists("celery")


def test_a_wait_beyond_the_visibility_timeout_is_warned_about_on_redis_only(monkeypatch) -> None:
    monkeypatch.delenv("TCEL_VISIBILITY_TIMEOUT", raising=False)
    assert "may run more than once" in (eta_warning("redis://h/0", 4000, None) or "")
    assert eta_warning("redis://h/0", 3000, None) is None
    assert eta_warning("amqp://h//", 4000, None) is None
    later = datetime.now(UTC) + timedelta(hours=2)
    assert "visibility timeout (3600 s)" in (eta_warning("redis://h/0", None, later) or "")
    assert eta_warning("redis://h/0", None, datetime.now(UTC) + timedelta(minutes=5)) is None


def test_the_broker_option_is_checked_and_remembered(monkeypatch) -> None:
    monkeypatch.delenv("TCEL_BROKER", raising=False)
    assert broker_option(None, {}) == "rabbitmq"
    assert broker_option(None, {"TCEL_BROKER": "redis"}) == "redis"
    assert broker_option("RabbitMQ", {"TCEL_BROKER": "redis"}) == "rabbitmq"
    with pytest.raises(UsageError, match="unknown broker 'kafka'"):
        broker_option("kafka", {})


@pytest.mark.parametrize(
    ("changes", "swarm", "named"),
    [
        ({"flower": True}, False, "--flower"),
        ({"beat": True}, False, "--beat"),
        ({}, True, "--swarm"),
        ({"bind": "0.0.0.0"}, False, "--bind 0.0.0.0"),
    ],
)
def test_what_only_rabbitmq_offers_is_refused_on_redis(changes: dict, swarm: bool, named: str) -> None:
    with pytest.raises(UsageError, match=f"{named} works with a RabbitMQ broker only"):
        redis_refusals(replace(OPTIONS, **changes), swarm)
    redis_refusals(replace(OPTIONS, broker="rabbitmq", **changes), swarm)  # RabbitMQ has them all
    with pytest.raises(UsageError, match="RabbitMQ broker only"):
        rabbitmq_only("this", "redis://h/0")
