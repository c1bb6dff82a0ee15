"""What `tcel up --swarm` is to reach, decided from the options, the state kept for the project and the services
that exist, without the Docker engine: whether to make a swarm, which node holds the data, which ports the
services publish, and what changes on a running worker service."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...credentials import Credentials
from ...errors import NotRunning, TcelError, UsageError
from ...names import BACKEND_PORT, BROKER_PORT, LABEL_AUTOSCALE
from ...settings import Project
from .. import specs
from ..base import UpOptions
from ..ports import EVERY_INTERFACE, PortChooser
from ..state_recovery import refuse_other_logins
from .docker_api import Node, Service

if TYPE_CHECKING:
    from ..worker_image import WorkerImage

PUBLISHED_NOTE = "Swarm publishes the broker's and backend's ports on every interface of the data node {node}"
FLOWER_PUBLISHED_NOTE = (
    "Swarm publishes Flower's port {port} on every interface of the data node {node} too, behind its generated login"
)
METRICS_PUBLISHED_NOTE = (
    "Swarm publishes the exporter's port {port} on every interface of the data node {node} too, behind its "
    "generated login"
)
REGISTRY_PUBLISHED_NOTE = ", and the registry's port {port} on every interface of every node"
INIT_NOTE = (
    "this engine is now a single-node swarm manager on 127.0.0.1 (for other machines to join, 'docker swarm "
    "init --advertise-addr ADDRESS' instead); leaving it later ('docker swarm leave') cuts name resolution in the "
    "networks of the plain-container stacks on this engine: 'tcel down' and 'tcel up' them afterwards"
)
# what `up` compares and changes on a running worker service (a rolling update), besides its image
SETTING_NAMES = {
    "CELERY_WORKER_CONCURRENCY": "concurrency",
    "CELERY_WORKER_QUEUES": "queues",
    "CELERY_WORKER_MAX_TASKS_PER_CHILD": "max tasks per child",
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD": "max memory per child (KiB)",
}
WORKER_SETTINGS = tuple(SETTING_NAMES)


@dataclass
class SwarmPlan:
    """What `up --swarm` is to reach."""

    options: UpOptions
    existing: dict[str, Service]  # by kind; `up` adds what it makes
    credentials: Credentials
    data_node: Node
    with_flower: bool
    kept: dict[str, str]  # the settings the project's state kept from the last `up`
    with_beat: bool = False
    notes: list[str] = field(default_factory=list)
    worker_image: str = ""  # the local image; the name every node pulls comes from the registry
    flower_image: str | None = None
    with_metrics: bool = False
    metrics_image: str | None = None
    registry_port: str = ""  # of the registry tcel runs ("" with --registry)
    built: bool = False  # `up` built an image
    image: WorkerImage | None = None  # how the worker image is made
    autoscale: str = ""  # the autoscaler's policy when the stack has one (it runs the exporter's image)
    autoscale_image: str | None = None

    @property
    def settings(self) -> dict[str, str]:
        """What the project's state keeps with the credentials."""
        return {
            "TCEL_ENGINE": "swarm",
            "TCEL_BROKER_IMAGE": self.options.broker_image,
            "TCEL_BACKEND_IMAGE": self.options.backend_image,
            "TCEL_PYTHON_IMAGE": self.options.python_image,
            "TCEL_CONCURRENCY": str(self.options.concurrency or ""),
            **specs.kept_limits(self.options),
            "TCEL_REGISTRY": self.options.registry or "",
            "TCEL_DATA_NODE": self.data_node.hostname,
            "TCEL_REGISTRY_PORT": self.registry_port,
            "TCEL_BEAT": "1" if self.with_beat else "",
            "TCEL_AUTOSCALE": self.autoscale,
            **(self.image.kept() if self.image else {}),
        }


def plan(
    project: Project,
    options: UpOptions,
    existing: dict[str, Service],
    kept: dict[str, str],
    saved: Credentials | None,
    fresh: Credentials,
    data_node: Node,
    here: bool,
) -> SwarmPlan:
    """Decide from the options, the kept state (`saved` credentials, else `fresh` ones) and the services that
    exist, once the data node is known (`here`: it is this machine, whose ports tcel can check)."""
    if options.workers_only and not {"broker", "backend"} <= existing.keys():
        raise NotRunning(f"stack {project.name}: broker or backend not running", hint="run 'tcel up' first")
    running = sorted({"broker", "backend"} & existing.keys())
    refuse_data_node_move(project, kept.get("TCEL_DATA_NODE"), data_node.hostname, running)
    ports = PortChooser(project.name, EVERY_INTERFACE, here)
    access = (saved or fresh).with_ports(
        EVERY_INTERFACE if here else data_node.address,
        ports.choose("broker", _running_port(existing, "broker", saved), options.broker_port, _kept(saved, "broker")),
        ports.choose(
            "backend", _running_port(existing, "backend", saved), options.backend_port, _kept(saved, "backend")
        ),
    )
    labels = {kind: existing[kind].labels for kind in running}
    refuse_other_logins(project, options, access, labels, DOWN_UP)
    if not options.registry:  # the registry tcel runs, and its mirrors, refuse anyone without its login
        access = access.with_registry_login()
    with_flower = not options.workers_only and (options.flower or "flower" in existing)
    if with_flower:
        access = flower_access(ports, options, existing, access)
    with_metrics = not options.workers_only and (options.metrics or "metrics" in existing)
    if with_metrics:
        access = metrics_access(ports, options, existing, access)
    return SwarmPlan(
        options,
        existing,
        access,
        data_node,
        with_flower,
        kept,
        options.beat if not options.workers_only else "beat" in existing,
        ports.notes,
        with_metrics=with_metrics,
        registry_port=kept.get("TCEL_REGISTRY_PORT", ""),
        # `tcel scale` keeps the autoscaler as it runs
        autoscale=options.autoscale if not options.workers_only else existing_policy(existing),
    )


# A broker or backend service reads its logins (definitions, ACL users) at boot, and `up` keeps one that runs
DOWN_UP = (
    "'tcel down' (the data volumes on the data node and the state file stay) then 'tcel up': the broker and "
    "backend read their users again when they start"
)


def existing_policy(existing: dict[str, Service]) -> str:
    return existing["autoscaler"].labels.get(LABEL_AUTOSCALE, "") if "autoscaler" in existing else ""


def flower_access(
    ports: PortChooser, options: UpOptions, existing: dict[str, Service], access: Credentials
) -> Credentials:
    """The credentials with Flower's login (kept, or new) and port: the one its service publishes, else the one
    asked for (refused when taken on this machine), else the kept one, else a free one when the data node is
    this machine and the kept one is taken."""
    running = (existing["flower"].published_port or access.flower_port) if "flower" in existing else None
    port = ports.choose("flower", running, options.flower_port, access.flower_port, refuse_taken=True)
    return replace(access.with_flower_login(), flower_port=port)


def metrics_access(
    ports: PortChooser, options: UpOptions, existing: dict[str, Service], access: Credentials
) -> Credentials:
    """The credentials with the exporter's login (kept, or new) and port, chosen as Flower's."""
    running = (existing["metrics"].published_port or access.metrics_port) if "metrics" in existing else None
    port = ports.choose("metrics", running, options.metrics_port, access.metrics_port, refuse_taken=True)
    return replace(access.with_metrics_login(), metrics_port=port)


def _running_port(existing: dict[str, Service], kind: str, saved: Credentials | None) -> int | None:
    if kind not in existing:
        return None
    return existing[kind].published_port or _kept(saved, kind)


def _kept(saved: Credentials | None, kind: str) -> int:
    if saved is None:
        return BROKER_PORT if kind == "broker" else BACKEND_PORT
    return saved.broker_port if kind == "broker" else saved.backend_port


def membership(info: dict[str, Any], init: bool) -> bool:
    """Whether tcel must initialise a swarm first (only with `init`), from `docker info`'s Swarm part; refuses
    an engine that is a worker of a swarm, or in no swarm without `init`."""
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    if state == "active" and swarm.get("ControlAvailable"):
        return False
    if state == "active":
        raise UsageError(
            "this Docker engine is a worker of a swarm, not a manager",
            hint="run tcel against a manager (DOCKER_HOST), or promote this node with 'docker node promote'",
        )
    if state in ("pending", "locked", "error"):
        raise TcelError(f"this Docker engine's swarm is {state}", hint="see 'docker info'")
    if not init:
        raise UsageError(
            "this Docker engine is not a swarm manager",
            hint="run 'tcel up --swarm --init' to make it a single-node swarm ('docker swarm init' for one that "
            "other machines join), or 'TCEL_ENGINE=containers tcel up' to run the stack as plain containers",
        )
    return True


def refuse_data_node_move(project: Project, current: str | None, asked: str, running: list[str]) -> None:
    """Refuse to move a running broker or backend to another node: its named volume there is empty (Swarm
    does not carry volumes between nodes)."""
    if running and current and asked != current:
        raise UsageError(
            f"stack {project.name} keeps its {' and '.join(running)} data on node {current}: on node {asked} "
            "they would start on empty volumes",
            hint=f"to move them, 'tcel down' (the data stays in the volumes on {current}), then "
            f"'tcel up --swarm --data-node {asked}'",
        )


def published_note(node: str, registry_port: str | None) -> str:
    """What Swarm publishes on every interface (it has no per-address publishing): the data node's broker and
    backend ports, and the port of the registry tcel runs (the registry on the manager, a mirror on every other
    node)."""
    return PUBLISHED_NOTE.format(node=node) + (
        REGISTRY_PUBLISHED_NOTE.format(port=registry_port) if registry_port else ""
    )


@dataclass(frozen=True)
class WorkerChange:
    """What `up` changes on a running worker service: its image, settings (the new value, or None to drop it
    back to the image's default) and replica count."""

    image: str | None  # the new image; None: unchanged
    settings: dict[str, str | None]
    replicas: tuple[int, int]  # from, to

    @property
    def described(self) -> list[str]:
        what = ["new image"] if self.image and self.settings else []
        return what + [
            f"{SETTING_NAMES[key]} {value}" if value else f"{SETTING_NAMES[key]} as the image's default"
            for key, value in self.settings.items()
        ]


def setting_changes(running: dict[str, str], wanted: dict[str, str], keep_queues: bool) -> dict[str, str | None]:
    """The worker settings (concurrency, queues) in the `wanted` environment that the `running` one does not
    have: the new value, or None to drop it (back to the image's default); with `keep_queues`, the queues stay."""
    asked = {key: wanted.get(key) for key in WORKER_SETTINGS if not (keep_queues and key == "CELERY_WORKER_QUEUES")}
    return {key: value for key, value in asked.items() if running.get(key) != value}


def worker_change(
    running_image: str, running: dict[str, str], replicas: int, wanted: dict[str, str], image: str, options: UpOptions
) -> WorkerChange:
    """What changes on a worker service that runs `running_image` with the environment `running` and `replicas`,
    to run `image` with the `wanted` environment: the settings asked for that it does not have (the queues stay
    unless asked) and the count asked for (else as many as run)."""
    changed = setting_changes(running, wanted, keep_queues=options.queues is None)
    return WorkerChange(
        image if running_image != image else None, changed, (replicas, options.workers or replicas or 1)
    )
