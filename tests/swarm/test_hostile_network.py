"""A Swarm stack (`up --swarm --flower --metrics`) as someone on the same network meets it (issue 25, item 7).

An outsider's network namespace on the lab's bridge, not a node, at the subnet's .200, runs tests/swarm/outsider.py
(`ip netns exec`, the worktree's Python): without the stack's authority or logins it can neither verify any
published port's certificate, nor get a service's answer in clear text, nor log in to the broker (AMQPS) or the
backend (Redis over TLS) even when it skips verification, nor read Flower or the exporter, nor pull from or push
to the registry or a node's mirror; with the authority and `tcel env`'s URLs (the logins) it does all of it, and a
raw AF_PACKET socket on its eth0 sees a TLS handshake record (0x16) as the first bytes each way on every
connection. It reaches the data node (the manager, the lab address) by the manager's host name, which the
services' certificates hold (the namespace's /etc/hosts, through /etc/netns/), and the registry and a node's
mirror by address."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from celery_cli.settings import setting
from tests.conftest import StackProject, free_port, make_project
from tests.swarm.conftest import Lab, swarm_lab
from tests.swarm.test_registry_safety import authority, kept, worker_image

pytestmark = pytest.mark.swarm

OUTSIDER = "tcel-outsider"
HUB = "tcel-lab-hub"
CLIENT = Path(__file__).with_name("outsider.py")
SERVICES = ("broker", "backend", "flower", "metrics")


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


@pytest.fixture(scope="module")
def outsider(lab: Lab) -> Iterator[str]:
    """A network namespace on the lab's bridge, as scripts/swarm-lab makes a node's, with no engine: the address
    it has there. Its /etc/hosts names the manager by its lab address; all of it is removed at the end."""
    manager = lab.engine.info()["Swarm"]["NodeAddr"]
    address = manager.rpartition(".")[0] + ".200"
    hosts = Path("/etc/netns") / OUTSIDER
    try:
        ip("netns", "add", OUTSIDER)
        ip("-n", HUB, "link", "add", OUTSIDER, "type", "veth", "peer", "name", "eth0", "netns", OUTSIDER)
        ip("-n", HUB, "link", "set", OUTSIDER, "master", "br0")
        ip("-n", HUB, "link", "set", OUTSIDER, "up")
        ip("-n", OUTSIDER, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", OUTSIDER, "link", "set", "lo", "up")
        ip("-n", OUTSIDER, "link", "set", "eth0", "up")
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts").write_text(f"127.0.0.1 localhost\n{manager} {socket.gethostname()}\n")
        yield address
    finally:
        subprocess.run(["ip", "-n", HUB, "link", "del", OUTSIDER], capture_output=True)
        subprocess.run(["ip", "netns", "del", OUTSIDER], capture_output=True)
        (hosts / "hosts").unlink(missing_ok=True)
        if hosts.exists():
            hosts.rmdir()


@pytest.fixture(scope="module")
def hostile_stack(lab: Lab, tmp_path_factory) -> Iterator[StackProject]:
    loaded = swarm_lab("load", setting("TCEL_REGISTRY_IMAGE"))
    assert loaded.returncode == 0, loaded.stderr
    with make_project(lab.engine, tmp_path_factory.mktemp("swarm-hostile")) as project:
        project.env.update(TCEL_FLOWER_PORT=str(free_port()), TCEL_METRICS_PORT=str(free_port()))
        try:
            up = project.tcel("up", "--swarm", "--flower", "--metrics", "--workers", "2")
            assert up.code == 0, up.stderr
            yield project
        finally:
            project.tcel("down", "--volumes")


def reached_by(url: str, host: str) -> str:
    """`tcel env`'s URL with its host (127.0.0.1 on the manager) replaced by the one the outsider uses."""
    parts = urlsplit(url)
    login, _, place = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{login}@{host}:{place.rpartition(':')[2]}"))


def plan(lab: Lab, stack: StackProject, address: str) -> dict:
    """What the outsider reaches, and what a client given the authority and the logins knows."""
    manager = lab.engine.info()["Swarm"]["NodeAddr"]
    node = next(n.attrs["Status"]["Addr"] for n in lab.engine.nodes.list() if n.attrs["Spec"]["Role"] == "worker")
    env = stack.tcel_json("env")
    access = stack.connection
    registry_port = int(kept(stack)["TCEL_REGISTRY_PORT"])
    ports = {
        "broker": [manager, urlsplit(env["CELERY_BROKER_URL"]).port],
        "backend": [manager, urlsplit(env["CELERY_RESULT_BACKEND_URL"]).port],
        "flower": [manager, access.flower_port],
        "metrics": [manager, access.metrics_port],
        "registry": [manager, registry_port],
        "mirror": [node, registry_port],
    }
    name = socket.gethostname()
    return {
        "outsider": address,
        "ports": ports,
        "names": {**dict.fromkeys(SERVICES, name), "registry": manager, "mirror": node},
        "broker_url": reached_by(env["CELERY_BROKER_URL"], name),
        "backend_url": reached_by(env["CELERY_RESULT_BACKEND_URL"], name),
        "ca_file": authority(stack),
        "tag": worker_image(lab, stack).partition("@")[0].rpartition(":")[2],
        "logins": {
            "flower": f"{access.flower_user}:{access.flower_password}",
            "metrics": f"{access.metrics_user}:{access.metrics_password}",
            "registry": f"{access.registry_user}:{access.registry_password}",
            "mirror": f"{access.registry_user}:{access.registry_password}",
        },
    }


@pytest.fixture(scope="module")
def seen(lab: Lab, hostile_stack: StackProject, outsider: str) -> dict:
    """What the outsider met (tests/swarm/outsider.py's report), with the plan it was given."""
    given = plan(lab, hostile_stack, outsider)
    done = subprocess.run(
        ["ip", "netns", "exec", OUTSIDER, sys.executable, str(CLIENT)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout), "plan": given}


def test_tcel_env_gives_tls_urls_and_the_authority(hostile_stack: StackProject) -> None:
    env = hostile_stack.tcel_json("env")  # only the schemes in a failure's message: the URLs hold passwords
    schemes = [urlsplit(env[key]).scheme for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND_URL")]
    assert schemes == ["amqps", "rediss"]
    assert env.get("TCEL_CA_FILE") == authority(hostile_stack)


@pytest.mark.parametrize("service", [*SERVICES, "registry", "mirror"])
def test_a_stranger_cannot_verify_any_published_port(seen: dict, service: str) -> None:
    tried = seen["stranger"][service]["system authorities"]
    assert tried.startswith("SSLCertVerificationError"), tried


@pytest.mark.parametrize("service", [*SERVICES, "registry", "mirror"])
def test_clear_text_gets_no_answer_of_the_service(seen: dict, service: str) -> None:
    """Nothing a plain AMQP, RESP or HTTP client understands: silence, a TLS alert or the registry's 400."""
    tried = seen["stranger"][service]["clear text"]
    assert tried.startswith("ok: "), tried
    answer = bytes.fromhex(tried[4:])
    assert answer == b"" or answer[:1] == b"\x15" or answer.startswith(b"HTTP/1.0 400"), answer


@pytest.mark.parametrize("service", ["broker", "backend"])
def test_without_the_login_the_broker_and_backend_refuse(seen: dict, service: str) -> None:
    refused = ("ACCESS_REFUSED", "AccessRefused") if service == "broker" else ("AuthenticationError",)
    for attempt in ("no login, TLS unverified", "wrong password, TLS unverified"):
        tried = seen["stranger"][service][attempt]
        assert any(word in tried for word in refused), f"{attempt}: {tried}"


@pytest.mark.parametrize("service", ["flower", "metrics", "registry", "mirror"])
def test_without_the_login_the_web_ports_answer_401(seen: dict, service: str) -> None:
    for attempt, tried in seen["stranger"][service].items():
        if "TLS unverified" in attempt:
            assert tried == "ok: 401", f"{attempt}: {tried}"


def test_with_the_authority_and_the_logins_everything_answers(seen: dict) -> None:
    got = seen["client"]
    assert got["broker"]["tcel env's URL and the authority"] == "ok: RabbitMQ", got["broker"]
    assert got["backend"]["tcel env's URL and the authority"] == "ok: True", got["backend"]
    for service in ("flower", "metrics", "registry", "mirror"):
        assert got[service]["login and the authority"] == "ok: 200", (service, got[service])
    for service in ("registry", "mirror"):
        assert got[service]["pull with the login"] == "ok: 200", (service, got[service])
    assert got["registry"]["push with the login"] == "ok: 202", got["registry"]


def test_the_traffic_is_tls_both_ways(seen: dict) -> None:
    """On every connection of the client with the authority, the first bytes each side sent on the wire."""
    wire = seen["first_bytes"]
    for service, (host, port) in seen["plan"]["ports"].items():
        connections = wire.get(f"{host}:{port}", [])
        assert connections, f"no connection to {service} ({host}:{port}) seen: {sorted(wire)}"
        for sides in connections:
            assert sides.get("client", "").startswith("16"), (service, sides)
            assert sides.get("server", "").startswith("16"), (service, sides)
