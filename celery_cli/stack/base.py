"""What every engine's stack does (up, wait until ready, down, status, scale, logs, endpoints), the plain
values it takes and returns, and the template both engines' `up` follow (plan, prepare, apply under one
rollback, save). containers/ fills it in with plain containers, swarm/ with Swarm services."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import credentials
from ..credentials import Credentials
from ..output import Progress
from ..project_app import ProjectApp
from ..settings import Project, require_fitting_name
from .docker_client import engine_errors
from .image_age import age_days
from .lock import project_lock
from .rollback import Rollback

if TYPE_CHECKING:
    from .readiness import Ready

P = TypeVar("P")  # an engine's plan of `up`


@dataclass(frozen=True)
class UpOptions:
    bind: str
    broker_port: int | None  # None: as kept for the project, else the default; a free one if that is taken
    backend_port: int | None
    broker_image: str
    backend_image: str
    python_image: str
    workers: int | None = None
    concurrency: int | None = None
    queues: tuple[str, ...] | None = None  # what workers consume (default: as running, else Celery's default queue)
    # a pool process is replaced after this many tasks, or once it holds this many KiB (Celery's options; None: no
    # limit); kept for the project as TCEL_MAX_TASKS_PER_CHILD and TCEL_MAX_MEMORY_PER_CHILD
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None
    build: bool = False
    # pull the broker's, backend's and Python base's images (on Swarm the registry's too) before anything else,
    # then rebuild the worker, Flower and exporter images on the fresh base
    pull: bool = False
    workers_only: bool = False  # `tcel scale`: never create or start the broker or backend
    flower: bool = False  # add Flower; without it, a Flower that exists is kept as it is
    flower_port: int | None = None  # as broker_port
    metrics: bool = False  # add the Prometheus exporter; without it, one that exists is kept as it is
    metrics_port: int | None = None  # as broker_port
    beat: bool = False  # the stack has one beat (on the workers' image); kept for the project as TCEL_BEAT
    # the autoscaler's policy, MIN:MAX:THRESHOLD:COOLDOWN ("": none); kept for the project as TCEL_AUTOSCALE
    autoscale: str = ""
    # Swarm only: make the engine a single-node swarm manager if it is in no swarm; the node the broker and
    # backend run on (default: the manager); the registry the worker image goes to (default: one tcel runs)
    swarm_init: bool = False
    data_node: str | None = None
    registry: str | None = None
    registry_image: str = "registry:2"
    app: ProjectApp | None = None  # the app the workers run (None: found in the project's directory)
    worker_command: tuple[str, ...] | None = None  # --worker-command; default: tcel's
    broker: str = "rabbitmq"  # which broker runs (broker_kind.py); kept for the project as TCEL_BROKER


@dataclass
class UpReport:
    credentials: Credentials
    created: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    built: bool = False
    ready_after: float | None = None  # seconds until every service answered, when waited for
    workers: list[str] = field(default_factory=list)  # their Celery node names, once they answered
    notes: list[str] = field(default_factory=list)  # what the user should know, such as a port chosen
    flower: bool = False  # the stack has a Flower service
    metrics: bool = False  # the stack has the exporter
    beat: bool = False  # the stack has a beat
    autoscale: str = ""  # the autoscaler's policy (MIN:MAX:THRESHOLD:COOLDOWN) when the stack has one
    engine: str = ""  # containers or swarm
    # what changed in a running service besides its image, as `name: what` (on Swarm: replica counts, settings)
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.started or self.removed or self.built)

    def as_dict(self, project: str, credentials_file: str) -> dict[str, Any]:
        """What `up --json` prints; secrets masked."""
        from ..credentials import mask

        c = self.credentials
        return {
            "project": project,
            "engine": self.engine,
            "changed": self.changed,
            "built": self.built,
            "created": self.created,
            "started": self.started,
            "removed": self.removed,
            "changes": self.changes,
            "ready": self.ready_after is not None,
            "ready_seconds": round(self.ready_after, 2) if self.ready_after is not None else None,
            "workers": self.workers,
            "broker": {
                "host": c.host,
                "port": c.broker_port,
                "user": c.broker_user,
                "password": mask(c.broker_password),
            },
            "backend": {"host": c.host, "port": c.backend_port, "password": mask(c.backend_password)},
            "flower": flower_dict(c) if self.flower else None,
            "metrics": metrics_dict(c) if self.metrics else None,
            "beat": self.beat,
            "autoscale": self.autoscale or None,
            "credentials_file": credentials_file,
            "notes": self.notes,
        }


def flower_dict(access: Credentials, show_password: bool = False) -> dict[str, Any]:
    """Where Flower answers and its login, for --json; the password masked unless asked for."""
    from ..credentials import mask

    return {
        "url": access.flower_url(),
        "user": access.flower_user,
        "password": access.flower_password if show_password else mask(access.flower_password),
    }


def metrics_dict(access: Credentials, show_password: bool = False) -> dict[str, Any]:
    """Where the exporter answers and its login, for --json; the password masked unless asked for."""
    from ..credentials import mask

    return {
        "url": access.metrics_url(),
        "user": access.metrics_user,
        "password": access.metrics_password if show_password else mask(access.metrics_password),
    }


@dataclass
class ReloadReport:
    """What a reload did: the worker image the files make now, and the workers moved onto it."""

    image: str
    built: bool = False
    build_seconds: float = 0.0
    replaced: list[str] = field(default_factory=list)  # workers now running `image` in place of older ones
    replace_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "build_seconds": round(self.build_seconds, 2),
            "replace_seconds": round(self.replace_seconds, 2),
        }


class ReloadInterrupted(KeyboardInterrupt):
    """Ctrl-C during a reload, raised once the workers are in a state that holds without tcel: `state` says
    which worker runs which image, and what was cut short."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


@dataclass
class DownReport:
    engine: str  # containers or swarm
    containers: list[str]  # plain containers removed
    services: list[str]  # Swarm services removed
    networks: list[str]
    volumes: list[str]
    configs: list[str] = field(default_factory=list)  # Swarm configs removed: the copies of the state file

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ServiceStatus:
    """What `tcel status` shows of one running unit of a service (a container today)."""

    service: str
    name: str
    hostname: str
    state: str
    ready: bool | None
    image: str
    ports: list[str]
    started_at: datetime | None
    url: str | None = None  # where a web service (Flower) answers from the host
    node: str | None = None  # on Swarm: the host name of the node the task runs on
    replicas: tuple[int, int] | None = None  # on Swarm: the running and the desired tasks of the row's service
    restarts: int | None = None  # plain containers: how often the engine restarted it (its restart policy)
    image_created: datetime | None = None  # when its image was made (None: the engine here does not have it)

    @property
    def uptime(self) -> float | None:
        if self.state != "running" or self.started_at is None:
            return None
        return max(0.0, (datetime.now(UTC) - self.started_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat() if self.started_at else None
        data["uptime_seconds"] = round(self.uptime, 1) if self.uptime is not None else None
        data["image_created"] = self.image_created.isoformat() if self.image_created else None
        data["image_age_days"] = age_days(self.image_created)
        return data


class Stack(ABC):
    """One project's stack. Commands hold one of these and never ask which engine runs it; they touch only
    what carries the project's label."""

    engine: str  # which engine runs it: containers or swarm (choice.ENGINES)

    def __init__(self, project: Project) -> None:
        self.project = project

    @abstractmethod
    def status(self) -> list[ServiceStatus]:
        """Every unit of every service as the engine reports it; `ready` is left for the caller (None)."""

    @abstractmethod
    def up(self, options: UpOptions, progress: Progress) -> UpReport:
        """Create or start whatever is missing or stopped, replace workers of an older image, leave the rest."""

    @abstractmethod
    def wait_ready(self, credentials: Credentials, timeout: float, progress: Progress) -> Ready:
        """Wait until broker, backend and every worker answer."""

    @abstractmethod
    def replace_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        """Build the worker image from the project's files as they are now, then replace the workers of other
        images one at a time (a rolling update): each new worker must answer before an old one gets a warm
        shutdown of up to `grace` seconds. A failing build, or a new worker that exits or does not answer,
        raises and leaves the old workers serving."""

    @abstractmethod
    def down(self, volumes: bool = False) -> DownReport:
        """Stop and remove everything of the project (the data volumes too, if asked)."""

    @abstractmethod
    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        """(source, line) pairs, interleaved by time; as they come with `follow`."""

    @abstractmethod
    def keep_stopped(self, hostnames: Collection[str]) -> None:
        """Workers that shut down on request (`tcel control shutdown`) stay down until the next `up`, although
        their engine restarts what stops. Swarm keeps a service's replica count, so it starts new ones there."""

    def endpoints(self) -> Credentials | None:
        """How to reach the broker and backend from the host, once `up` has run; a stack that serves TLS is
        verified against its own authority from then on in this process (amqps:// from Celery's client too)."""
        from ..broker_tls import trust

        access = credentials.load(self.project)
        if access is not None:
            trust(access)
        return access

    def start(self, options: UpOptions, ready_timeout: float | None, progress: Progress) -> UpReport:
        """`up`, then wait until everything answers (unless ready_timeout is None)."""
        from .. import task_registry

        before = credentials.kept(self.project)
        report = self.up(options, progress)
        if report.changed:
            task_registry.forget(report.credentials.broker_url())  # other workers may know other tasks
        if ready_timeout is not None:
            try:
                ready = self.wait_ready(report.credentials, ready_timeout, progress)
                report.ready_after, report.workers = ready.seconds, sorted(ready.workers)
            except BaseException:  # an app or worker command whose workers never answered is not remembered
                credentials.restore(self.project, before, credentials.KEPT_ONCE_READY)
                raise
        return report

    def reload_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        """`up --watch` after a change: replace_workers, then forget the cached task names, since the new
        workers may know other tasks."""
        from .. import task_registry

        try:
            return self.replace_workers(options, grace, ready_timeout, progress)
        finally:
            if (access := self.endpoints()) is not None:
                task_registry.forget(access.broker_url())

    def scale(self, workers: int, options: UpOptions, ready_timeout: float, progress: Progress) -> UpReport:
        """Run exactly `workers` workers, all answering; the broker and backend are left alone."""
        return self.start(replace(options, workers=workers, workers_only=True), ready_timeout, progress)


class PlannedStack(Stack, Generic[P]):
    """A stack whose `up` follows one template: `plan` decides from the options and what exists (nothing is
    changed), `prepare` does what may fail before anything is made (pull, build, check ports), `apply` makes
    and changes the stack, registering how to undo each step with one rollback, and the project's state is
    saved once it has worked."""

    def up(self, options: UpOptions, progress: Progress) -> UpReport:
        require_fitting_name(self.project.name)
        with project_lock(self.project), engine_errors():  # one clear line for whatever the engine refuses
            planned = self.plan(options, progress)
            self.prepare(planned, progress)
            with Rollback() as undo:
                report = self.apply(planned, undo, progress)
            report.engine = self.engine
            credentials.save(self.project, report.credentials, self.settings(planned, report))
            self.keep_state(planned, report)
            return report

    def keep_state(self, planned: P, report: UpReport) -> None:
        """Keep a copy of the state file on the engine, from which a later `up` recovers it if it is lost."""

    @abstractmethod
    def plan(self, options: UpOptions, progress: Progress) -> P:
        """What `up` is to reach, from the options and what exists."""

    @abstractmethod
    def prepare(self, planned: P, progress: Progress) -> None:
        """Pull, build and check before anything is made."""

    @abstractmethod
    def apply(self, planned: P, undo: Rollback, progress: Progress) -> UpReport:
        """Make and change the stack; each step registers with `undo` how to take it back."""

    @abstractmethod
    def settings(self, planned: P, report: UpReport) -> dict[str, str]:
        """The settings the project's state keeps with the credentials once `up` has worked."""
