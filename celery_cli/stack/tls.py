"""TLS for what a stack serves across machines (on Swarm, and on plain containers published beyond loopback):
RabbitMQ over AMQPS, Redis over TLS, Flower and the exporter over HTTPS, each with a certificate from the
stack's authority (tls_ca.py) for the names clients reach it by; and the authority's certificate for every
client among the stack's services. Certificates, keys and the authority are files put in before start (Docker
secrets on Swarm), a key readable by its service's user only, never in the environment."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..credentials import Credentials
from ..names import AMQPS_PORT, BROKER_PORT, INSIDE_CA_FILE
from ..settings import Project
from ..tls_ca import issue

CERT_FILE = "/run/secrets/tcel_tls.crt"
KEY_FILE = "/run/secrets/tcel_tls.key"
ISSUED = (CERT_FILE, KEY_FILE)  # new at each `up`: not part of what makes a container stale (specs.files_digest)
CA_VARIABLE = "TCEL_CA_FILE"  # where tcel's clients (broker_tls, tcel_worker, flowerconfig) find the authority
CERT_VARIABLE, KEY_VARIABLE = "TCEL_TLS_CERT_FILE", "TCEL_TLS_KEY_FILE"  # Flower's and the exporter's HTTPS
BROKER_TLS_CONF = "/etc/rabbitmq/conf.d/80-tcel-tls.conf"
# The user each server runs as in its image (the official images' and the stand-ins' uid; tcel's own images set
# theirs): its key is that user's alone.
SERVICE_UIDS = {"broker": 999, "backend": 0, "flower": 999, "metrics": 999}  # backend: see BACKEND_KEY
# AMQPS only: the plain listener is off, so nothing reaches the broker in clear text, from the host or the
# stack's network. The server asks for no client certificate: clients log in with the stack's user.
BROKER_CONF = f"""listeners.tcp = none
listeners.ssl.default = {AMQPS_PORT}
ssl_options.cacertfile = {INSIDE_CA_FILE}
ssl_options.certfile = {CERT_FILE}
ssl_options.keyfile = {KEY_FILE}
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
"""
# Redis on its usual port, TLS only (port 0 closes the plain one); clients log in with the password, so no
# client certificate is asked for. Its user's uid differs between images (999 in the official one, Debian's 100
# in the stand-in): the key, root's alone, is copied into memory (/dev/shm) for the user named redis in both,
# before the image's entry point drops to it.
BACKEND_KEY = "/dev/shm/tcel_tls.key"
BACKEND_CONF = f"""port 0
tls-port 6379
tls-cert-file {CERT_FILE}
tls-key-file {BACKEND_KEY}
tls-ca-cert-file {INSIDE_CA_FILE}
tls-auth-clients no
"""


@dataclass(frozen=True)
class Additions:
    """What TLS adds to a service's spec: files (put in before start), the uid that alone reads some of them,
    variables naming them, and inner ports that move (plain AMQP's to AMQPS's)."""

    files: dict[str, bytes]
    owners: dict[str, int] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    moved_ports: dict[int, int] = field(default_factory=dict)
    command: list[str] | None = None


def server_names(key: str, credentials: Credentials, extra: tuple[str, ...] = ()) -> list[str]:
    """The names a service's certificate holds: its name on the stack's network, this machine's (loopback, host
    name), the address its ports are published on, and `extra` (Swarm's data node)."""
    names = [key, "localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    if credentials.bind not in ("0.0.0.0", "::"):
        names.append(credentials.bind)
    return list(dict.fromkeys(name for name in (*names, *extra) if name))


def served(service: str, project: Project, credentials: Credentials, extra: tuple[str, ...] = ()) -> Additions:
    """A server of the stack: its certificate, its key (its user's alone) and the authority's certificate."""
    issued = issue(project, server_names(service, credentials, extra))
    files = {CERT_FILE: issued.certificate, KEY_FILE: issued.key, INSIDE_CA_FILE: issued.authority}
    return Additions(files, owners={KEY_FILE: SERVICE_UIDS[service]})


def broker(project: Project, credentials: Credentials, extra: tuple[str, ...] = ()) -> Additions:
    """RabbitMQ serving AMQPS only, published where plain AMQP was."""
    added = served("broker", project, credentials, extra)
    files = {**added.files, BROKER_TLS_CONF: BROKER_CONF.encode()}
    return Additions(files, added.owners, moved_ports={BROKER_PORT: AMQPS_PORT})


def backend(
    project: Project, credentials: Credentials, conf: tuple[str, bytes], extra: tuple[str, ...] = ()
) -> Additions:
    """Redis serving TLS only: BACKEND_CONF added to its config file `conf` (path, content)."""
    added = served("backend", project, credentials, extra)
    start = f"install -m 400 -o redis {KEY_FILE} {BACKEND_KEY} && exec docker-entrypoint.sh redis-server {conf[0]}"
    files = {**added.files, conf[0]: conf[1] + BACKEND_CONF.encode()}
    return Additions(files, {KEY_FILE: 0}, command=["sh", "-c", start])


def web(service: str, project: Project, credentials: Credentials, extra: tuple[str, ...] = ()) -> Additions:
    """Flower or the exporter over HTTPS (they read the files TCEL_TLS_*_FILE name), trusting the authority."""
    added = served(service, project, credentials, extra)
    environment = {CA_VARIABLE: INSIDE_CA_FILE, CERT_VARIABLE: CERT_FILE, KEY_VARIABLE: KEY_FILE}
    return Additions(added.files, added.owners, environment)


def client(credentials: Credentials) -> Additions:
    """A client of the broker and backend among the stack's services, given the authority's certificate (its
    rediss:// URL names the file; TCEL_CA_FILE does for amqps://)."""
    authority = Path(credentials.ca_file).read_bytes()
    return Additions({INSIDE_CA_FILE: authority}, environment={CA_VARIABLE: INSIDE_CA_FILE})
