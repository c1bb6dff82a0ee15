"""What each service's container looks like, whichever engine runs it: one spec per service."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace

from ..credentials import Credentials
from ..names import (
    BACKEND_PORT,
    BROKER_PORT,
    FLOWER_PORT,
    LABEL_AUTOSCALE,
    LABEL_CHILD_LIMITS,
    LABEL_FILES,
    LABEL_NUMBER,
    LABEL_QUEUES,
    LABEL_SERVICE,
    MAX_MESSAGE_SIZE,
    METRICS_PORT,
)
from ..settings import Project
from . import tls
from .access_control import broker_definitions, redis_acl, redis_broker_acl
from .base import UpOptions

STOP_TIMEOUT = 10
# A worker gets a second for its cold shutdown, then SIGKILL: with late acks and reject-on-worker-lost its
# running and reserved tasks go back to the queue either way (tests/faults/test_worker_killed.py).
WORKER_STOP_TIMEOUT = 1
# A reload (`up --watch`) stops a replaced worker warm first: on SIGTERM Celery takes no new task and lets its
# running ones finish, for up to --grace seconds, before the cold path above.
WORKER_WARM_STOP_SIGNAL = "SIGTERM"
PASSED_TO_WORKERS = ("TCEL_ADD_DELAY", "TCEL_INDEX_MAX_TASKS", "TCEL_VISIBILITY_TIMEOUT")
PASSED_TO_AUTOSCALER = ("TCEL_AUTOSCALE_INTERVAL", "TCEL_AUTOSCALE_GRACE")
DOCKER_SOCKET = "/var/run/docker.sock"  # the engine's API on its own host, mounted into the autoscaler
# Every container comes back by itself when it fails and when the engine restarts (not after `docker stop`);
# Swarm restarts a service's tasks on its own. Logs are rotated on both engines: 3 files of 10 MB a container.
RESTART_POLICY = "unless-stopped"
LOG_DRIVER = "json-file"
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}
# The beat: the workers' app (tcel_worker) under RedBeat's scheduler with tcel's additions (worker_side/tcel_beat.py)
BEAT_COMMAND = ("celery", "-A", "tcel_worker", "beat", "-S", "tcel_beat:Scheduler", "--loglevel=INFO")
REDIS_CONF = "/etc/tcel-redis.conf"
REDIS_BROKER_VOLUME = "redis-broker"  # the Redis broker's data volume: tcel-<project>-redis-broker-data
# Where passwords go when they must not be in a service's environment (Docker secrets on Swarm): RabbitMQ reads
# default_user/default_pass from any file in conf.d (the official image's and our stand-in's config directory);
# the worker's config reads its URLs from the files CELERY_BROKER_URL_FILE and CELERY_RESULT_BACKEND_URL_FILE name.
RABBITMQ_USER_CONF = "/etc/rabbitmq/conf.d/90-tcel-user.conf"
# the users of each role and their permissions, which RabbitMQ imports at every boot (stack/access_control.py)
RABBITMQ_DEFINITIONS = "/etc/rabbitmq/tcel-definitions.json"
SECRETS_DIR = "/run/secrets"
# (every worker image's entrypoint exports each *_FILE into its variable, for any app: tcel_worker's entrypoint.sh)
URL_VARIABLES = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_RESULT_BACKEND_URL")
FLOWER_URL_VARIABLES = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND_URL")  # what flowerconfig.py and the exporter read
# Flower's login, as flowerconfig.py reads it from the file TCEL_FLOWER_BASIC_AUTH_FILE names (not FLOWER_...:
# Flower takes every FLOWER_* variable for one of its options and stops at one it does not know)
FLOWER_LOGIN_VARIABLE = "TCEL_FLOWER_BASIC_AUTH"
METRICS_LOGIN_VARIABLE = "TCEL_METRICS_BASIC_AUTH"  # what the exporter (celery_cli/exporter.py) reads


@dataclass(frozen=True)
class ServiceSpec:
    """One container of the stack: its image, names, environment, ports, data and how it stops."""

    service: str
    number: int | None
    image: str
    environment: dict[str, str] = field(default_factory=dict)
    ports: dict[int, tuple[str, int]] = field(default_factory=dict)  # inner port -> (host address, host port)
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> path inside
    files: dict[str, bytes] = field(default_factory=dict)  # path inside -> content, put in before start
    hostname: str | None = None  # the container's host name (a worker's Celery node name) when not the key
    command: list[str] | None = None
    stop_signal: str | None = None
    stop_timeout: int = STOP_TIMEOUT
    queues: tuple[str, ...] | None = None  # a worker's queues; None: the image's default
    child_limits: str = "0,0"  # a worker's pool limits, as child_limits() writes them
    health: tuple[str, ...] | None = None  # a command that exits 0 once the service serves (Swarm: its task runs then)
    groups: tuple[str, ...] = ()  # supplementary groups of its user (the autoscaler: the Docker socket's)
    owners: dict[str, int] = field(default_factory=dict)  # a file of `files` -> the uid that alone reads it

    @property
    def key(self) -> str:
        """The network alias inside the stack, and the host name unless one is given: broker, backend, worker-N."""
        return f"{self.service}-{self.number}" if self.number else self.service

    def labels(self, project: Project) -> dict[str, str]:
        labels = {**project.labels, LABEL_SERVICE: self.service, LABEL_NUMBER: str(self.number or 0)}
        if self.service == "worker":
            labels[LABEL_QUEUES] = ",".join(self.queues or ())
            labels[LABEL_CHILD_LIMITS] = self.child_limits
        if self.service == "autoscaler":
            labels[LABEL_AUTOSCALE] = self.environment.get("TCEL_AUTOSCALE", "")
        if self.files:  # which logins it was made with: a container made with others is replaced
            labels[LABEL_FILES] = files_digest(self.files)
        return labels


def made_with_other_files(project: Project, spec: ServiceSpec, labels: dict[str, str]) -> bool:
    """Whether a running container or service of `spec`, whose labels are `labels`, was made with other files
    (logins) than the spec's, such as a broker or backend made before each service had its own user."""
    return labels.get(LABEL_FILES, "") != spec.labels(project).get(LABEL_FILES, "")


def files_digest(files: dict[str, bytes]) -> str:
    """What the files a service is made with say, less the certificate and key issued afresh at each `up` (the
    logins, configuration and authority decide whether a container is replaced, a new key alone does not)."""
    digest = hashlib.sha256()
    for path, content in sorted(files.items()):
        if path in tls.ISSUED:
            continue
        digest.update(hashlib.sha256(path.encode() + b"\0" + content).digest())
    return digest.hexdigest()[:16]


def broker(project: Project, options: UpOptions, credentials: Credentials) -> ServiceSpec:
    """The stack's broker: Redis (`up --broker redis`), else RabbitMQ."""
    if credentials.broker == "redis":
        return redis_broker(project, options, credentials)
    return rabbitmq_broker(project, options, credentials)


def redis_broker(project: Project, options: UpOptions, credentials: Credentials) -> ServiceSpec:
    """Redis as the broker, in a container of its own (the backend's image) named `broker` on the stack's network:
    it listens on the broker's port, so the workers' URLs keep `@broker:5672`; its ACL users (the CLI's, the
    workers'; `default` off: stack/access_control.py) in its config file put in before start, never on its command
    line, append-only persistence on, its data in a volume of its own (a RabbitMQ volume of the project is left as
    it is)."""
    conf = f"port {BROKER_PORT}\n{redis_broker_acl(credentials)}appendonly yes\nappendfsync everysec\n"
    return ServiceSpec(
        "broker",
        None,
        options.backend_image,
        command=["redis-server", REDIS_CONF],
        files={REDIS_CONF: conf.encode()},
        ports={BROKER_PORT: (credentials.bind, credentials.broker_port)},
        volumes={project.volume(REDIS_BROKER_VOLUME): "/data"},
    )


def rabbitmq_broker(project: Project, options: UpOptions, credentials: Credentials) -> ServiceSpec:
    """RabbitMQ with the stack's user, whose password goes in a config file put in before start (a Docker
    secret on Swarm), never in its environment; serving AMQPS only when the stack serves TLS."""
    spec = secrets_in_files(
        ServiceSpec(
            "broker",
            None,
            options.broker_image,
            environment={
                "RABBITMQ_DEFAULT_USER": credentials.broker_user,
                "RABBITMQ_DEFAULT_PASS": credentials.broker_password,
                # an application setting on the Erlang command line: no file to copy in before start (0.1 s)
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-rabbit max_message_size {MAX_MESSAGE_SIZE}",
            },
            ports={BROKER_PORT: (credentials.bind, credentials.broker_port)},
            volumes={project.volume("broker"): "/var/lib/rabbitmq"},
            files={RABBITMQ_DEFINITIONS: broker_definitions(credentials)},
        )
    )
    return with_tls(spec, tls.broker(project, credentials)) if credentials.tls else spec


def backend(project: Project, options: UpOptions, credentials: Credentials) -> ServiceSpec:
    """Redis with the stack's password in its config file; serving TLS only when the stack serves TLS."""
    spec = ServiceSpec(
        "backend",
        None,
        options.backend_image,
        # the password goes in a file put in before start, not on a command line `docker inspect` shows
        command=["redis-server", REDIS_CONF],
        # Redis's ACL users (stack/access_control.py); `default` is off
        files={REDIS_CONF: f"{redis_acl(credentials)}appendonly yes\n".encode()},
        ports={BACKEND_PORT: (credentials.bind, credentials.backend_port)},
        volumes={project.volume("backend"): "/data"},
    )
    return (
        with_tls(spec, tls.backend(project, credentials, (REDIS_CONF, spec.files[REDIS_CONF])))
        if credentials.tls
        else spec
    )


def worker(number: int, options: UpOptions, credentials: Credentials, image: str) -> ServiceSpec:
    environment = credentials.inside_network()
    if options.concurrency:
        environment["CELERY_WORKER_CONCURRENCY"] = str(options.concurrency)
    if options.queues:
        # the worker's -Q: Celery's command line reads CELERY_WORKER_<OPTION>, so any project's CMD honours it
        environment["CELERY_WORKER_QUEUES"] = ",".join(options.queues)
    if options.max_tasks_per_child:
        environment["CELERY_WORKER_MAX_TASKS_PER_CHILD"] = str(options.max_tasks_per_child)
    if options.max_memory_per_child:
        environment["CELERY_WORKER_MAX_MEMORY_PER_CHILD"] = str(options.max_memory_per_child)
    environment.update({k: os.environ[k] for k in PASSED_TO_WORKERS if k in os.environ})
    # the URLs go in files named by CELERY_*_FILE on either engine, which the image's entrypoint exports
    spec = secrets_in_files(
        ServiceSpec(
            "worker",
            number,
            image,
            environment=environment,
            # Cold shutdown: running tasks go back to the queue instead of being waited for (SIGTERM's warm
            # shutdown)
            stop_signal="SIGQUIT",
            stop_timeout=WORKER_STOP_TIMEOUT,
            queues=options.queues,
            child_limits=child_limits(options),
        )
    )
    return with_tls(spec, tls.client(credentials)) if credentials.tls else spec


def kept_limits(options: UpOptions) -> dict[str, str]:
    """The workers' pool limits as the project's state keeps them ("": none)."""
    return {
        "TCEL_MAX_TASKS_PER_CHILD": str(options.max_tasks_per_child or ""),
        "TCEL_MAX_MEMORY_PER_CHILD": str(options.max_memory_per_child or ""),
    }


def child_limits(options: UpOptions) -> str:
    """The worker's pool limits as its label keeps them: "TASKS,KIB", 0 for none."""
    return f"{options.max_tasks_per_child or 0},{options.max_memory_per_child or 0}"


def beat(credentials: Credentials, image: str) -> ServiceSpec:
    """The stack's one beat (RedBeat, tcel_beat.py), from the workers' image and with their app. Its URLs are
    files named by CELERY_*_FILE on either engine, as Flower's are: no password in its environment."""
    spec = secrets_in_files(
        ServiceSpec("beat", None, image, environment=credentials.inside_network("beat"), command=list(BEAT_COMMAND))
    )
    return with_tls(spec, tls.client(credentials)) if credentials.tls else spec


def flower(credentials: Credentials, image: str, project: Project) -> ServiceSpec:
    """Flower, watching the stack's workers through the broker's events, behind a basic-auth login (over HTTPS
    when the stack serves TLS)."""
    login = f"{credentials.flower_user}:{credentials.flower_password}"
    spec = behind_login(
        "flower", image, credentials, (FLOWER_LOGIN_VARIABLE, login), {FLOWER_PORT: credentials.flower_port}
    )
    return with_tls(spec, tls.web(spec.service, project, credentials)) if credentials.tls else spec


def metrics(credentials: Credentials, image: str, project: Project) -> ServiceSpec:
    """tcel's Prometheus exporter (celery_cli/exporter.py), reading the queues, workers and recent tasks on
    each scrape, behind a basic-auth login (over HTTPS when the stack serves TLS)."""
    login = f"{credentials.metrics_user}:{credentials.metrics_password}"
    spec = behind_login(
        "metrics", image, credentials, (METRICS_LOGIN_VARIABLE, login), {METRICS_PORT: credentials.metrics_port}
    )
    return with_tls(spec, tls.web(spec.service, project, credentials)) if credentials.tls else spec


def autoscaler(project: Project, credentials: Credentials, image: str, policy: str, engine: str) -> ServiceSpec:
    """tcel's autoscaler (celery_cli/autoscaler.py) in the exporter's image: `policy` is MIN:MAX:THRESHOLD:COOLDOWN.
    Its URLs are files under /run/secrets, as the exporter's are; the Docker socket is mounted into it (the
    engine's API, which it needs to add and remove workers), with the socket's group so that its non-root user
    may use it."""
    inside = credentials.inside_network("metrics")
    secrets = {key: inside[key] for key in FLOWER_URL_VARIABLES}
    environment = {f"{key}_FILE": secret_path(key) for key in secrets}
    environment.update(TCEL_AUTOSCALE=policy, TCEL_PROJECT=project.name, TCEL_ENGINE=engine)
    environment.update({k: os.environ[k] for k in PASSED_TO_AUTOSCALER if k in os.environ})
    socket_group = str(os.stat(DOCKER_SOCKET).st_gid) if os.path.exists(DOCKER_SOCKET) else None
    spec = ServiceSpec(
        "autoscaler",
        None,
        image,
        environment=environment,
        files={secret_path(key): value.encode() for key, value in secrets.items()},
        volumes={DOCKER_SOCKET: DOCKER_SOCKET},
        command=["python", "-m", "celery_cli.autoscaler"],
        groups=(socket_group,) if socket_group else (),
    )
    return with_tls(spec, tls.client(credentials)) if credentials.tls else spec


def behind_login(
    service: str, image: str, credentials: Credentials, login: tuple[str, str], ports: dict[int, int]
) -> ServiceSpec:
    """A web service of the stack (Flower, the exporter) published on the stack's address behind a login. Its
    secrets (the broker's and backend's URLs, the login "user:password" under the variable `login` names) are
    files under /run/secrets on either engine (put in before start on containers, Docker secrets on Swarm), which
    it reads from the files the *_FILE variables name: nothing secret in its environment or on its command line,
    where `docker inspect` shows them."""
    inside = credentials.inside_network(service)
    secrets = {**{key: inside[key] for key in FLOWER_URL_VARIABLES}, login[0]: login[1]}
    return ServiceSpec(
        service,
        None,
        image,
        environment={f"{key}_FILE": secret_path(key) for key in secrets},
        files={secret_path(key): value.encode() for key, value in secrets.items()},
        ports={inner: (credentials.bind, outer) for inner, outer in ports.items()},
    )


def with_tls(spec: ServiceSpec, added: tls.Additions) -> ServiceSpec:
    """The service as a stack that serves TLS runs it (stack/tls.py)."""
    return replace(
        spec,
        files={**spec.files, **added.files},
        owners={**spec.owners, **added.owners},
        environment={**spec.environment, **added.environment},
        ports={added.moved_ports.get(inner, inner): outer for inner, outer in spec.ports.items()},
        command=added.command or spec.command,
    )


def secret_path(variable: str) -> str:
    """Where the secret a variable would hold goes as a file: /run/secrets/celery_broker_url..."""
    return f"{SECRETS_DIR}/{variable.lower()}"


def secrets_in_files(spec: ServiceSpec) -> ServiceSpec:
    """The same service with every password moved from its environment into files: the broker's user into a
    RabbitMQ config file, the worker's URLs into files named by CELERY_*_FILE (the backend's password is in a
    file already)."""
    environment, files = dict(spec.environment), dict(spec.files)
    if "RABBITMQ_DEFAULT_PASS" in environment:
        user, password = environment.pop("RABBITMQ_DEFAULT_USER"), environment.pop("RABBITMQ_DEFAULT_PASS")
        conf = f"default_user = {user}\ndefault_pass = {password}\n"
        if RABBITMQ_DEFINITIONS in files:
            conf += f"load_definitions = {RABBITMQ_DEFINITIONS}\n"
        files[RABBITMQ_USER_CONF] = conf.encode()
    for key in URL_VARIABLES:
        if environment.get(key):  # "" once moved: a spec already in files stays as it is
            path = secret_path(key)
            files[path] = environment.pop(key).encode()
            environment[f"{key}_FILE"] = path
            # empty, not absent: Celery prefers a CELERY_BROKER_URL in the environment (the image sets one) to
            # its config's broker_url
            environment[key] = ""
    return replace(spec, environment=environment, files=files)


def stop_timeout(service: str) -> int:
    return WORKER_STOP_TIMEOUT if service == "worker" else STOP_TIMEOUT
