"""Where a stack's credentials and published ports are kept, and the URLs built from them."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import NotRunning
from .settings import Project, read_env_file

BROKER_USER = "tcel"


@dataclass(frozen=True)
class Connection:
    """How to reach one stack's broker and backend, from the host or from inside its network."""

    broker_user: str
    broker_password: str
    backend_password: str
    bind: str = "127.0.0.1"
    broker_port: int = 5672
    backend_port: int = 6379

    @property
    def host(self) -> str:
        """The address the host connects to: loopback when the ports are published on every interface."""
        return "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind

    def broker_url(self, host: str | None = None, port: int | None = None) -> str:
        host = host or self.host
        return f"amqp://{self.broker_user}:{self.broker_password}@{_netloc(host)}:{port or self.broker_port}//"

    def backend_url(self, host: str | None = None, port: int | None = None) -> str:
        host = host or self.host
        return f"redis://:{self.backend_password}@{_netloc(host)}:{port or self.backend_port}/0"

    def inside_network(self) -> dict[str, str]:
        """The worker's environment: the seed's variables, pointing at the services' network aliases."""
        return {
            "CELERY_BROKER_URL": self.broker_url("broker", 5672),
            "CELERY_RESULT_BACKEND_URL": self.backend_url("backend", 6379),
        }

    def with_ports(self, bind: str, broker_port: int, backend_port: int) -> Connection:
        return replace(self, bind=bind, broker_port=broker_port, backend_port=backend_port)


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def state_file(project: Project) -> Path:
    return project.state_dir / f"{project.name}.env"


def load(project: Project) -> Connection | None:
    values = read_env_file(state_file(project))
    if not values.get("TCEL_BROKER_PASSWORD") or not values.get("TCEL_BACKEND_PASSWORD"):
        return None
    return Connection(
        broker_user=values.get("TCEL_BROKER_USER", BROKER_USER),
        broker_password=values["TCEL_BROKER_PASSWORD"],
        backend_password=values["TCEL_BACKEND_PASSWORD"],
        bind=values.get("TCEL_BIND", "127.0.0.1"),
        broker_port=int(values.get("TCEL_BROKER_PORT", 5672)),
        backend_port=int(values.get("TCEL_BACKEND_PORT", 6379)),
    )


def generate() -> Connection:
    """Fresh random credentials for a new stack (never RabbitMQ's guest)."""
    import secrets

    return Connection(BROKER_USER, secrets.token_urlsafe(24), secrets.token_urlsafe(24))


def save(project: Project, connection: Connection) -> None:
    """Write the state file readable by its owner only; docker compose can read it with --env-file."""
    project.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = {
        "TCEL_BROKER_USER": connection.broker_user,
        "TCEL_BROKER_PASSWORD": connection.broker_password,
        "TCEL_BACKEND_PASSWORD": connection.backend_password,
        "TCEL_BIND": connection.bind,
        "TCEL_BROKER_PORT": connection.broker_port,
        "TCEL_BACKEND_PORT": connection.backend_port,
    }
    path = state_file(project)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{key}={value}\n" for key, value in lines.items()))
    os.replace(tmp, path)


@dataclass(frozen=True)
class Endpoints:
    """The broker and backend URLs the task commands talk to."""

    broker_url: str
    backend_url: str


def endpoints(project: Project, broker_url: str | None = None, backend_url: str | None = None) -> Endpoints:
    return Endpoints(resolve_url(project, "broker", broker_url), resolve_url(project, "backend", backend_url))


def resolve_url(project: Project, service: str, option: str | None) -> str:
    """The option first, then the seed's CELERY_* variable, then the stack `tcel up` started here."""
    variable = "CELERY_BROKER_URL" if service == "broker" else "CELERY_RESULT_BACKEND_URL"
    url = option or os.environ.get(variable)
    if url:
        return url
    stack = load(project)
    if stack is None:
        raise NotRunning(
            f"no stack {project.name!r} has been started (no {state_file(project)})",
            hint=f"run 'tcel up' there, or pass --{service}-url",
        )
    return stack.broker_url() if service == "broker" else stack.backend_url()


def mask_url(url: str) -> str:
    """The URL with its password masked, fit to print."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", f":{mask(parts.password)}@", 1)


def mask(secret: str) -> str:
    """Just enough of a secret to recognise it, never the whole."""
    return secret[:2] + "…" if len(secret) > 8 else "…"
