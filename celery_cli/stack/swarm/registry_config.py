"""What the registry tcel runs on Swarm, and its mirror on every other node, are given so that only the stack
reads and writes them: a TLS certificate from the stack's authority (tls_ca.py), an htpasswd login (bcrypt), and
for a mirror the central registry's address with that login and the authority to verify it by; all of it in
Docker secrets (the whole configuration file is one), nothing in a service's environment or command."""

from __future__ import annotations

import json

from ...credentials import Credentials
from ...settings import Project
from ..ports import EVERY_INTERFACE
from ..specs import SECRETS_DIR, ServiceSpec
from .docker_api import REGISTRY_PORT, Node

CONFIG = "/etc/docker/registry/config.yml"  # where both the official image and the stand-in read it
CERTIFICATE = f"{SECRETS_DIR}/tcel_registry.crt"
KEY = f"{SECRETS_DIR}/tcel_registry.key"
AUTHORITY = f"{SECRETS_DIR}/tcel_registry_ca.crt"
HTPASSWD = f"{SECRETS_DIR}/tcel_registry_htpasswd"
# The password is 192 random bits: bcrypt's cost protects nothing more, and the registry pays it on every request
# (a pull makes dozens), so the lowest cost htpasswd -B uses.
BCRYPT_ROUNDS = 5
# The registry's answer to `/` needs no login (distribution's `alive` handler): a mirror's healthcheck asks it
# over TLS (busybox's wget, in the official image and the stand-in, does not check the certificate, on loopback)
# (the official registry:2 image has busybox's wget, as the stand-in has)
MIRROR_HEALTH = ("wget", "-q", "--no-check-certificate", "-O", "/dev/null", f"https://127.0.0.1:{REGISTRY_PORT}/")


def central_spec(project: Project, image: str, port: int, access: Credentials, manager: list[Node]) -> ServiceSpec:
    """The registry on the manager, published on `port`, keeping its images in a named volume."""
    return ServiceSpec(
        "registry",
        None,
        image,
        ports={REGISTRY_PORT: (EVERY_INTERFACE, port)},
        volumes={project.volume("registry"): "/var/lib/registry"},
        files=files(project, access, names(manager, "registry"), central=True),
    )


def mirror_spec(project: Project, image: str, port: int, access: Credentials, others: list[Node]) -> ServiceSpec:
    """The pull-through mirror of the central registry on every other node, published on the same port; its task
    runs once its healthcheck has had an answer (the registry listens only once it has reached the central one)."""
    return ServiceSpec(
        "registry-mirror",
        None,
        image,
        # the central one's certificate is verified against the stack's authority (Go reads SSL_CERT_FILE)
        environment={"SSL_CERT_FILE": AUTHORITY},
        ports={REGISTRY_PORT: (EVERY_INTERFACE, port)},
        files=files(project, access, names(others, "registry-mirror"), central=False),
        health=MIRROR_HEALTH,
    )


def htpasswd(user: str, password: str) -> bytes:
    """One htpasswd line for the login, bcrypt-hashed (the only scheme the registry accepts)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    return user.encode() + b":" + hashed + b"\n"


def names(nodes: list[Node], alias: str) -> list[str]:
    """The names and addresses a registry is reached by: its alias on the overlay network, loopback (each
    engine pulls from its own node's), and the nodes' host names and addresses (a client on the network)."""
    found = [alias, "127.0.0.1", "localhost"]
    for node in nodes:
        found += [node.hostname, node.address]
    return list(dict.fromkeys(found))


def files(project: Project, access: Credentials, certificate_names: list[str], central: bool) -> dict[str, bytes]:
    """The secret files of the central registry (`central`) or of a mirror: its configuration, login, certificate
    and key, and for a mirror the authority that signs the central registry's certificate."""
    from ... import tls_ca

    issued = tls_ca.issue(project, certificate_names)
    made = {
        CONFIG: config(project, access, central).encode(),
        HTPASSWD: htpasswd(access.registry_user, access.registry_password),
        CERTIFICATE: issued.certificate,
        KEY: issued.key,
    }
    if not central:
        made[AUTHORITY] = issued.authority
    return made


def config(project: Project, access: Credentials, central: bool) -> str:
    """The registry's configuration (the official image's, with TLS and the login); a mirror's also proxies the
    central registry over TLS with the login in its URL: distribution sends a proxy's configured username and
    password only to a token server, never as basic auth, while Go's HTTP client sends a URL's own."""
    quoted = json.dumps  # a JSON string is a YAML string
    lines = [
        "version: 0.1",
        "log:",
        "  fields:",
        "    service: registry",
        "storage:",
        "  cache:",
        "    blobdescriptor: inmemory",
        "  filesystem:",
        "    rootdirectory: /var/lib/registry",
        "http:",
        f"  addr: :{REGISTRY_PORT}",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
        "  tls:",
        f"    certificate: {quoted(CERTIFICATE)}",
        f"    key: {quoted(KEY)}",
        "auth:",
        "  htpasswd:",
        f"    realm: {quoted(f'tcel-{project.name}')}",
        f"    path: {quoted(HTPASSWD)}",
    ]
    if not central:
        login = f"{access.registry_user}:{access.registry_password}"
        lines += ["proxy:", f"  remoteurl: {quoted(f'https://{login}@registry:{REGISTRY_PORT}')}"]
    return "\n".join(lines) + "\n"
