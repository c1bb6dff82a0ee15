import stat
from dataclasses import replace
from pathlib import Path

from celery_cli import credentials
from celery_cli.settings import resolve_project


def test_generated_credentials_are_random_and_never_guest() -> None:
    first, second = credentials.generate(), credentials.generate()
    assert first.broker_user != "guest"
    assert len(first.broker_password) >= 24
    assert first.broker_password != second.broker_password
    assert first.broker_password != first.backend_password


def test_state_file_round_trips_and_is_owner_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = resolve_project(tmp_path, "demo")
    assert credentials.load(project) is None
    saved = credentials.generate(project).with_ports("127.0.0.1", 25672, 16379)
    credentials.save(project, saved)
    assert credentials.load(project) == saved
    path = credentials.state_file(project)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(project.state_dir.stat().st_mode) == 0o700
    assert path == tmp_path / "state" / "tcel" / "demo.env"


def test_urls_point_at_loopback_from_the_host_and_at_aliases_inside() -> None:
    c = credentials.Credentials("tcel", "bpw", "rpw", bind="0.0.0.0", broker_port=15672, backend_port=16379)
    assert c.broker_url() == "amqp://tcel:bpw@127.0.0.1:15672//"
    assert c.backend_url() == "redis://tcel:rpw@127.0.0.1:16379/0"
    # a state from before the roles: every service logs in as the CLI's user until `up` makes the roles
    assert c.inside_network() == {
        "CELERY_BROKER_URL": "amqp://tcel:bpw@broker:5672//",
        "CELERY_RESULT_BACKEND": "redis://tcel:rpw@backend:6379/0",
        "CELERY_RESULT_BACKEND_URL": "redis://tcel:rpw@backend:6379/0",
    }
    roles = replace(c, role_passwords={"worker": "wpw", "flower": "fpw"})
    assert roles.inside_network()["CELERY_BROKER_URL"] == "amqp://tcel-worker:wpw@broker:5672//"
    assert roles.inside_network("flower")["CELERY_RESULT_BACKEND"] == "redis://tcel-flower:fpw@backend:6379/0"
    assert roles.broker_url() == "amqp://tcel:bpw@127.0.0.1:15672//"


def test_a_state_without_the_roles_gets_them_at_the_next_up_and_keeps_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = resolve_project(tmp_path, "demo")
    old = credentials.Credentials("tcel", "bpw", "rpw")
    credentials.save(project, old)
    loaded = credentials.load(project)
    assert loaded is not None and not loaded.role_passwords
    upgraded = loaded.with_role_passwords()
    assert set(upgraded.role_passwords) == set(credentials.ROLES)
    assert upgraded.with_role_passwords() == upgraded
    credentials.save(project, upgraded)
    assert credentials.load(project) == upgraded


def test_mask_never_shows_a_whole_secret() -> None:
    secret = credentials.generate().broker_password
    assert secret not in credentials.mask(secret)
    assert credentials.mask("short") == "…"


def test_mask_url_masks_every_failover_url_and_password_query_parameters() -> None:
    first, second, query, sentinel = "firstsecret1", "secondsecret2", "querysecret3", "sentinelsecret4"
    urls = [
        f"amqp://tcel:{first}@h1:5672//;amqp://tcel:{second}@h2:5672//",
        f"redis://h:6379/0?password={query}",
        f"redis://h:6379/0?db=1&sentinel_password={sentinel}&x=1",
        f"amqp://tcel:{first}@[::1:5672//;redis://h/0?PASSWORD={query}",  # not splittable as a URL
    ]
    for url in urls:
        masked = credentials.mask_url(url)
        assert not any(secret in masked for secret in (first, second, query, sentinel)), masked
        assert masked.count(";") == url.count(";")
    assert credentials.mask_url("redis://h:6379/0?db=1") == "redis://h:6379/0?db=1"
    assert credentials.mask_url(f"redis://:{query}@h/0") == "redis://:qu…@h/0"
