"""A stack's credentials and published ports: generated, kept in the state file, turned into URLs, masked."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

from .names import AMQPS_PORT, BACKEND_PORT, BROKER_PORT, FLOWER_PORT, INSIDE_CA_FILE, METRICS_PORT
from .settings import Project, env_line, read_env_file, read_env_text
from .tls_ca import ca_file

# Addresses that keep a stack's ports on this machine: anything else (every interface, an address others reach,
# Swarm's data node) makes the stack serve TLS from its own authority (tls_ca.py).
LOOPBACK = ("127.0.0.1", "::1", "localhost")

BROKER_USER = "tcel"
BACKEND_USER = "tcel"  # the CLI's Redis ACL user (stack/access_control.py); Redis's `default` user is off
# The services' own logins, one per role, a user of that name on the broker and on the backend with one password:
# the workers, the beat, Flower, the exporter (and the autoscaler, which runs in its image)
ROLES = ("worker", "beat", "flower", "metrics")


def role_user(role: str) -> str:
    return f"tcel-{role}"


def _role_key(role: str) -> str:
    return f"TCEL_SERVICE_PASSWORD_{role.upper()}"


KEPT = (
    "TCEL_BROKER_IMAGE",
    "TCEL_BACKEND_IMAGE",
    "TCEL_PYTHON_IMAGE",
    "TCEL_CONCURRENCY",
    "TCEL_MAX_TASKS_PER_CHILD",
    "TCEL_MAX_MEMORY_PER_CHILD",
    # which engine runs the stack, and on Swarm where its data lives and which registry carries its image (not
    # the registry's image: it holds no data, and a registry tcel makes runs the one configured then)
    "TCEL_ENGINE",
    # which broker the stack runs: rabbitmq (the default) or redis (`up --broker`)
    "TCEL_BROKER",
    "TCEL_DATA_NODE",
    "TCEL_REGISTRY",
    "TCEL_REGISTRY_PORT",
    # whether the stack runs a beat (`up --beat`, until `up --no-beat`)
    "TCEL_BEAT",
    # the autoscaler's policy (`up --autoscale`, until `up --no-autoscale`)
    "TCEL_AUTOSCALE",
    # the app the workers run, as chosen or found, and a --worker-command given
    "TCEL_APP",
    "TCEL_WORKER_COMMAND",
)
# kept only once the workers they start have answered: a wrong --app is not remembered
KEPT_ONCE_READY = ("TCEL_APP", "TCEL_WORKER_COMMAND")


@dataclass(frozen=True)
class Credentials:
    """How to reach one stack's broker, backend, Flower and exporter, from the host or from inside its network."""

    broker_user: str
    broker_password: str
    backend_password: str
    bind: str = "127.0.0.1"
    broker_port: int = 5672
    backend_port: int = 6379
    flower_user: str = ""  # Flower's basic-auth login, made the first time `up --flower` runs
    flower_password: str = ""
    flower_port: int = FLOWER_PORT
    metrics_user: str = ""  # the exporter's basic-auth login, made the first time `up --metrics` runs
    metrics_password: str = ""
    metrics_port: int = METRICS_PORT
    role_passwords: Mapping[str, str] = field(default_factory=dict)  # a service role's password (ROLES)

    @property
    def backend_user(self) -> str:
        return BACKEND_USER

    def role_password(self, role: str) -> str:
        """A role's password, "" for none: a stack whose state predates the roles has none until `up` makes
        them (with_role_passwords); until then its services log in as the CLI's user, as they did."""
        return self.role_passwords.get(role, "")

    def with_role_passwords(self) -> Credentials:
        """These credentials with every role's password, generated for the roles that have none."""
        import secrets

        missing = {role: secrets.token_urlsafe(24) for role in ROLES if not self.role_passwords.get(role)}
        return replace(self, role_passwords={**self.role_passwords, **missing}) if missing else self

    # the login of the registry tcel runs on Swarm (and its mirrors), made the first time it is made
    registry_user: str = ""
    registry_password: str = ""
    broker: str = "rabbitmq"  # which broker runs: rabbitmq, or redis (broker_kind.py)
    ca_file: str = ""  # the stack's authority's certificate on this host (tls_ca.ca_file)

    @property
    def tls(self) -> bool:
        """Whether the stack serves TLS (AMQPS, Redis over TLS, HTTPS): on Swarm, and whenever its ports are
        published beyond loopback, its authority known."""
        return self.bind not in LOOPBACK and bool(self.ca_file)

    @property
    def host(self) -> str:
        """The address the host connects to: loopback when the ports are published on every interface."""
        return "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind

    def broker_url(self, host: str | None = None, port: int | None = None, role: str = "") -> str:
        """The broker's URL (amqps:// when the stack serves TLS), as the CLI's user or, inside the network, a
        role's: a RabbitMQ user, or on a Redis broker an ACL user of the same name and password
        (stack/access_control.py). A Redis broker is served on loopback only (`up` refuses it beyond)."""
        user, password = self._login(role, self.broker_user, self.broker_password)
        netloc = f"{_netloc(host or self.host)}:{port or self.broker_port}"
        if self.broker == "redis":
            return f"redis://{user}:{password}@{netloc}/0"
        return f"{self.scheme('amqp')}://{user}:{password}@{netloc}//"

    def backend_url(
        self, host: str | None = None, port: int | None = None, role: str = "", ca: str | None = None
    ) -> str:
        """The backend's URL with its ACL user (which redis-py and Celery send with AUTH): the CLI's or a role's;
        rediss:// when the stack serves TLS, verified against its authority (`ca`: its path where the client runs;
        Celery's backend and redis-py both read these parameters, and redis-py checks the host name)."""
        user, password = self._login(role, self.backend_user, self.backend_password)
        url = f"{self.scheme('redis')}://{user}:{password}@{_netloc(host or self.host)}:{port or self.backend_port}/0"
        return f"{url}?ssl_cert_reqs=required&ssl_ca_certs={quote(ca or self.ca_file, safe='/')}" if self.tls else url

    def _login(self, role: str, admin: str, admin_password: str) -> tuple[str, str]:
        if role and self.role_passwords.get(role):
            return role_user(role), self.role_passwords[role]
        return admin, admin_password

    def flower_url(self) -> str:
        """Flower's address from the host (no login in it: browsers and clients send it apart)."""
        return f"{self.scheme('http')}://{_netloc(self.host)}:{self.flower_port}/"

    def metrics_url(self) -> str:
        """Where Prometheus scrapes the exporter from the host (no login in it)."""
        return f"{self.scheme('http')}://{_netloc(self.host)}:{self.metrics_port}/metrics"

    def scheme(self, plain: str) -> str:
        """A URL scheme (amqp, redis, http), or its TLS one (amqps, rediss, https) when the stack serves TLS."""
        return f"{plain}s" if self.tls else plain

    def with_flower_login(self) -> Credentials:
        """These credentials with a Flower login, generated unless they have one."""
        if self.flower_password:
            return self
        user, password = _login()
        return replace(self, flower_user=user, flower_password=password)

    def with_metrics_login(self) -> Credentials:
        """These credentials with the exporter's login, generated unless they have one."""
        if self.metrics_password:
            return self
        user, password = _login()
        return replace(self, metrics_user=user, metrics_password=password)

    def with_registry_login(self) -> Credentials:
        """These credentials with the login of the registry tcel runs on Swarm, generated unless they have one."""
        if self.registry_password:
            return self
        user, password = _login()
        return replace(self, registry_user=user, registry_password=password)

    def on_host(self) -> dict[str, str]:
        """The seed's variables for a client on the host (what `tcel env` prints): secrets in full."""
        urls = {"CELERY_BROKER_URL": self.broker_url(), "CELERY_RESULT_BACKEND_URL": self.backend_url()}
        # the authority amqps:// is verified against (tcel's clients read it; an app's broker_use_ssl: security.md)
        return {**urls, "TCEL_CA_FILE": self.ca_file} if self.tls else urls

    def inside_network(self, role: str = "worker") -> dict[str, str]:
        """A service's environment (a worker's by default), pointing at the services' network aliases with the
        role's logins: the two variables Celery itself reads before any app's own configuration, and the seed's
        CELERY_RESULT_BACKEND_URL (its celeryconfig)."""
        backend = self.backend_url("backend", BACKEND_PORT, role, INSIDE_CA_FILE)
        return {
            "CELERY_BROKER_URL": self.broker_url("broker", AMQPS_PORT if self.tls else BROKER_PORT, role),
            "CELERY_RESULT_BACKEND": backend,
            "CELERY_RESULT_BACKEND_URL": backend,
        }

    def with_ports(self, bind: str, broker_port: int, backend_port: int) -> Credentials:
        return replace(self, bind=bind, broker_port=broker_port, backend_port=backend_port)


def _login() -> tuple[str, str]:
    """A generated basic-auth user and password."""
    import secrets

    return f"tcel-{secrets.token_hex(3)}", secrets.token_urlsafe(24)


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def state_file(project: Project) -> Path:
    return project.state_dir / f"{project.name}.env"


def load(project: Project) -> Credentials | None:
    values = read_env_file(state_file(project))
    if not values.get("TCEL_BROKER_PASSWORD") or not values.get("TCEL_BACKEND_PASSWORD"):
        return None
    return Credentials(
        broker_user=values.get("TCEL_BROKER_USER", BROKER_USER),
        broker_password=values["TCEL_BROKER_PASSWORD"],
        backend_password=values["TCEL_BACKEND_PASSWORD"],
        bind=values.get("TCEL_BIND", "127.0.0.1"),
        broker_port=int(values.get("TCEL_BROKER_PORT", 5672)),
        backend_port=int(values.get("TCEL_BACKEND_PORT", 6379)),
        flower_user=values.get("TCEL_FLOWER_USER", ""),
        flower_password=values.get("TCEL_FLOWER_PASSWORD", ""),
        flower_port=int(values.get("TCEL_FLOWER_PORT", FLOWER_PORT)),
        metrics_user=values.get("TCEL_METRICS_USER", ""),
        metrics_password=values.get("TCEL_METRICS_PASSWORD", ""),
        metrics_port=int(values.get("TCEL_METRICS_PORT", METRICS_PORT)),
        role_passwords={role: values[_role_key(role)] for role in ROLES if values.get(_role_key(role))},
        registry_user=values.get("TCEL_REGISTRY_USER", ""),
        registry_password=values.get("TCEL_REGISTRY_PASSWORD", ""),
        broker=values.get("TCEL_BROKER") or "rabbitmq",
        ca_file=str(ca_file(project)),
    )


def generate(project: Project | None = None) -> Credentials:
    """Fresh random credentials for a new stack (never RabbitMQ's guest), knowing where `project`'s authority is."""
    import secrets

    authority = str(ca_file(project)) if project is not None else ""
    fresh = Credentials(BROKER_USER, secrets.token_urlsafe(24), secrets.token_urlsafe(24), ca_file=authority)
    return fresh.with_role_passwords()


def kept(project: Project) -> dict[str, str]:
    """The settings the project's stack was last brought up with (images, concurrency), as the state keeps them."""
    values = read_env_file(state_file(project))
    return {key: value for key, value in values.items() if key in KEPT and value}


def restore(project: Project, previous: dict[str, str], keys: tuple[str, ...]) -> None:
    """Put the state's `keys` back as `previous` (what `kept` read before) had them, leaving the rest."""
    access = load(project)
    if access is None:
        return
    settings = {key: value for key, value in kept(project).items() if key not in keys}
    settings.update({key: previous[key] for key in keys if key in previous})
    save(project, access, settings)


def save(project: Project, credentials: Credentials, settings: dict[str, str] | None = None) -> None:
    """Write the state file readable by its owner only; docker compose can read it with --env-file. `settings`
    (images, concurrency) are kept with the credentials so that later commands run the stack the same way."""
    lines = {
        "TCEL_BROKER_USER": credentials.broker_user,
        "TCEL_BROKER_PASSWORD": credentials.broker_password,
        "TCEL_BACKEND_PASSWORD": credentials.backend_password,
        "TCEL_BIND": credentials.bind,
        "TCEL_BROKER_PORT": credentials.broker_port,
        "TCEL_BACKEND_PORT": credentials.backend_port,
        "TCEL_BROKER": credentials.broker,
        **(
            {
                "TCEL_FLOWER_USER": credentials.flower_user,
                "TCEL_FLOWER_PASSWORD": credentials.flower_password,
                "TCEL_FLOWER_PORT": credentials.flower_port,
            }
            if credentials.flower_password
            else {}
        ),
        **(
            {
                "TCEL_METRICS_USER": credentials.metrics_user,
                "TCEL_METRICS_PASSWORD": credentials.metrics_password,
                "TCEL_METRICS_PORT": credentials.metrics_port,
            }
            if credentials.metrics_password
            else {}
        ),
        **{_role_key(role): password for role, password in credentials.role_passwords.items()},
        **(
            {"TCEL_REGISTRY_USER": credentials.registry_user, "TCEL_REGISTRY_PASSWORD": credentials.registry_password}
            if credentials.registry_password
            else {}
        ),
        # the broker is the credentials' own (their URLs depend on it), not a setting to override
        **{key: value for key, value in (settings or {}).items() if key in KEPT and key != "TCEL_BROKER"},
    }
    _write_state(project, "".join(env_line(key, str(value)) for key, value in lines.items()))


def _write_state(project: Project, text: str) -> None:
    project.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_file(project)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def state_text(project: Project) -> str | None:
    """The state file as it is (what the engine keeps a copy of), None when there is none."""
    try:
        return state_file(project).read_text()
    except FileNotFoundError:
        return None


def restore_state(project: Project, text: str, where: str) -> Credentials | None:
    """Write the state file back from a copy (`where` names it), once it reads as one; its credentials."""
    values = read_env_text(text, where)
    if not values.get("TCEL_BROKER_PASSWORD") or not values.get("TCEL_BACKEND_PASSWORD"):
        return None
    _write_state(project, text)
    return load(project)


# a query parameter that carries a secret: redis-py's ?password=, kombu's and Sentinel's variants of it
_QUERY_SECRET = re.compile(r"([?&][^=&;#]*(?:password|passwd|secret)[^=&;#]*=)([^&;#]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL, or kombu's list of failover URLs separated by ';', with every password masked, fit to print."""
    return ";".join(_mask_one_url(part) for part in url.split(";"))


def _mask_one_url(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:  # not a URL Python can split (a bad IPv6 address): mask what follows ':' up to '@'
        password = url.partition("://")[2].rpartition("@")[0].partition(":")[2] or None
    if password:
        url = url.replace(f":{password}@", f":{mask(password)}@", 1)
    return _QUERY_SECRET.sub(lambda found: found.group(1) + mask(found.group(2)), url)


def mask(secret: str) -> str:
    """Just enough of a secret to recognise it, never the whole."""
    return secret[:2] + "…" if len(secret) > 8 else "…"
