"""What `tcel up` is to reach on plain containers, decided from the options and the containers that exist:
every container the stack should have, the ports it publishes, the images it needs; nothing is changed here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ... import credentials as stored
from ...credentials import Credentials
from ...errors import NotRunning, UsageError
from ...names import BACKEND_PORT, BROKER_PORT, FLOWER_PORT, LABEL_AUTOSCALE, METRICS_PORT
from ...settings import Project
from .. import specs
from ..base import UpOptions
from ..images import image_exists, service_image_name
from ..ports import PortChooser
from ..specs import ServiceSpec
from ..state_recovery import Recovered, refuse_other_logins
from ..worker_image import WorkerImage, worker_image
from . import state_copy
from .docker_api import Container, binding

if TYPE_CHECKING:
    import docker

Existing = dict[str, Container]  # the project's containers by name


@dataclass
class UpPlan:
    """What `up` is to reach: every container the stack should have, and what that takes."""

    existing: Existing  # as found; `up` keeps it current as it removes and makes containers
    credentials: Credentials
    settings: dict[str, str]  # kept in the state file with the credentials
    notes: list[str]
    services: list[ServiceSpec]
    worker_image: str
    image: WorkerImage  # how the worker image is made
    worker_queues: tuple[str, ...] | None
    child_limits: str  # the workers' pool limits (specs.child_limits)
    python_image: str
    build: bool
    extra_workers: list[Container]  # numbered above an asked worker count
    flower_image: str | None = None  # when the stack has Flower
    beat: bool = False  # the stack has a beat (from the worker image)
    extra_beat: list[Container] = field(default_factory=list)  # a beat that `up --no-beat` removes
    recovered: bool = False  # the credentials came from the engine's copy: the state file was lost
    build_flower: bool = False
    metrics_image: str | None = None  # when the stack has the exporter
    build_metrics: bool = False  # the exporter's image (which the autoscaler runs too) is missing or --pull
    pull: bool = False  # `up --pull`: refresh the pulled images, replace a broker or backend of an older one
    autoscale: str = ""  # the autoscaler's policy when the stack has one
    autoscale_image: str | None = None
    replaced_autoscaler: list[Container] = field(default_factory=list)  # removed first: gone, or another policy


def plan(client: docker.DockerClient, project: Project, options: UpOptions, existing: Existing) -> UpPlan:
    """Decide from the options and what exists; nothing is changed yet."""
    web = [s for s in ("flower", "metrics") if _wanted(project, options, existing, s)]
    access, notes, recovered = _access(client, project, options, existing, web)
    if options.workers_only:
        _require_running(project, existing, ("broker", "backend"))
        refuse_other_logins(project, options, access, _data_labels(project, existing), UP_FIRST)
    workers = [c for c in existing.values() if c.service == "worker"]
    options = _with_policy(project, options, existing)
    count = options.workers or len(workers) or (int(options.autoscale.split(":")[0]) if options.autoscale else 1)
    if options.queues is None and workers:  # workers keep their queues unless told otherwise
        options = replace(options, queues=workers[0].queues)
    image = worker_image(project, options.app, options.worker_command)
    worker_tag = image.name(options.python_image)
    flower_image, tcel_image, metrics_image = _service_images(options, web)
    beat = existing.get(project.container("beat"))
    with_beat = options.beat if not options.workers_only else beat is not None
    return UpPlan(
        existing=existing,
        credentials=access,
        settings=_kept_settings(options, with_beat, image),
        notes=notes,
        services=[
            specs.broker(project, options, access),
            specs.backend(project, options, access),
            *(specs.worker(n, options, access, worker_tag) for n in range(1, count + 1)),
            *([specs.beat(access, worker_tag)] if with_beat else []),
            *([specs.flower(access, flower_image, project)] if flower_image else []),
            *([specs.metrics(access, metrics_image, project)] if metrics_image else []),
            *_autoscaler(project, access, tcel_image, options.autoscale),
        ],
        worker_image=worker_tag,
        image=image,
        worker_queues=options.queues,
        child_limits=specs.child_limits(options),
        python_image=options.python_image,
        build=options.build or options.pull or not image_exists(client, worker_tag),
        extra_workers=[c for c in workers if c.number > count] if options.workers is not None else [],
        flower_image=flower_image,
        build_flower=flower_image is not None and (options.pull or not image_exists(client, flower_image)),
        metrics_image=metrics_image,
        build_metrics=tcel_image is not None and (options.pull or not image_exists(client, tcel_image)),
        autoscale=options.autoscale,
        autoscale_image=tcel_image if options.autoscale else None,
        replaced_autoscaler=_replaced_autoscaler(existing.get(project.container("autoscaler")), options.autoscale),
        beat=with_beat,
        extra_beat=[beat] if beat is not None and not with_beat else [],
        pull=options.pull,
        recovered=recovered is not None,
    )


def _access(
    client: docker.DockerClient, project: Project, options: UpOptions, existing: Existing, web: list[str]
) -> tuple[Credentials, list[str], Recovered | None]:
    """The stack's credentials (kept, recovered from the engine's copy of a lost state file, or new), the notes
    on them, and what was recovered, if anything."""
    saved = stored.load(project)
    recovered = state_copy.recovered(client, project, options.broker_image) if saved is None else None
    saved = saved or (recovered.credentials if recovered else None)
    if saved is not None and saved.broker != options.broker and project.container("broker") in existing:
        raise UsageError(
            f"stack {project.name} runs a {saved.broker} broker, holding its queued tasks; --broker "
            f"{options.broker} would start another",
            hint="run 'tcel down' first (each broker keeps its own data volume), or 'tcel up' without --broker",
        )
    fresh = replace(saved or stored.generate(project), broker=options.broker)
    access, notes = addresses(project, options, existing, fresh, saved is not None, web)
    if recovered is not None:
        notes.append(recovered.note)
    return access, notes, recovered


def _service_images(options: UpOptions, web: list[str]) -> tuple[str | None, str | None, str | None]:
    """Flower's image, tcel's own (the exporter's, which the autoscaler runs too) and the exporter's, where used."""
    flower = service_image_name("flower", options.python_image) if "flower" in web else None
    tcel = service_image_name("metrics", options.python_image) if "metrics" in web or options.autoscale else None
    return flower, tcel, tcel if "metrics" in web else None


def _kept_settings(options: UpOptions, with_beat: bool, image: WorkerImage) -> dict[str, str]:
    """What the state file keeps of this `up` for the next one."""
    return {
        "TCEL_BROKER_IMAGE": options.broker_image,
        "TCEL_BROKER": options.broker,
        "TCEL_BACKEND_IMAGE": options.backend_image,
        "TCEL_PYTHON_IMAGE": options.python_image,
        "TCEL_CONCURRENCY": str(options.concurrency or ""),
        **specs.kept_limits(options),
        "TCEL_BEAT": "1" if with_beat else "",
        "TCEL_AUTOSCALE": options.autoscale,
        **image.kept(),
    }


def addresses(
    project: Project, options: UpOptions, existing: Existing, access: Credentials, saved: bool, web: list[str]
) -> tuple[Credentials, list[str]]:
    """Where the broker, backend and `web` services (flower, metrics) are published: a stack that exists keeps
    its address and ports; a port the user asked for is used (a taken one is refused later); otherwise the
    project's kept port or the default, and a free port when that one is taken, so a second project starts
    beside the first. The web services get their logins (kept, else generated)."""
    broker_ip, broker_bound = binding(existing.get(project.container("broker")), BROKER_PORT)
    _, backend_bound = binding(existing.get(project.container("backend")), BACKEND_PORT)
    ports = PortChooser(project.name, broker_ip or options.bind)
    kept = (access.broker_port, access.backend_port) if saved else (BROKER_PORT, BACKEND_PORT)
    access = access.with_role_passwords().with_ports(
        ports.bind,
        ports.choose("broker", broker_bound, options.broker_port, kept[0]),
        ports.choose("backend", backend_bound, options.backend_port, kept[1]),
    )
    if "flower" in web:
        _, bound = binding(existing.get(project.container("flower")), FLOWER_PORT)
        port = ports.choose("flower", bound, options.flower_port, access.flower_port if saved else FLOWER_PORT)
        access = replace(access.with_flower_login(), flower_port=port)
    if "metrics" in web:
        _, bound = binding(existing.get(project.container("metrics")), METRICS_PORT)
        port = ports.choose("metrics", bound, options.metrics_port, access.metrics_port if saved else METRICS_PORT)
        access = replace(access.with_metrics_login(), metrics_port=port)
    return access, ports.notes


def _wanted(project: Project, options: UpOptions, existing: Existing, service: str) -> bool:
    """A web service (flower, metrics) is asked for, or runs already; never for `tcel scale`."""
    return not options.workers_only and (getattr(options, service) or project.container(service) in existing)


def _autoscaler(project: Project, access: Credentials, image: str | None, policy: str) -> list[ServiceSpec]:
    return [specs.autoscaler(project, access, image, policy, "containers")] if image and policy else []


def _replaced_autoscaler(autoscaler: Container | None, policy: str) -> list[Container]:
    """An autoscaler that runs another policy than asked (or none is asked) goes before anything is made."""
    return [autoscaler] if autoscaler is not None and autoscaler.labels.get(LABEL_AUTOSCALE) != policy else []


def _with_policy(project: Project, options: UpOptions, existing: Existing) -> UpOptions:
    """The options with the autoscaler's policy as asked; `tcel scale` keeps the autoscaler as it runs."""
    if not options.workers_only:
        return options
    autoscaler = existing.get(project.container("autoscaler"))
    return replace(options, autoscale=autoscaler.labels.get(LABEL_AUTOSCALE, "") if autoscaler is not None else "")


# `up` replaces a broker or backend container made with other logins (the data stays in its volume); `scale`
# leaves them alone
UP_FIRST = "run 'tcel up' first: it replaces them with ones that read their users again, and the data stays"


def _data_labels(project: Project, existing: Existing) -> dict[str, dict[str, str]]:
    """The labels of the running broker and backend containers, by kind."""
    return {kind: existing[project.container(kind)].labels for kind in ("broker", "backend")}


def _require_running(project: Project, existing: Existing, services: tuple[str, ...]) -> None:
    down = [s for s in services if getattr(existing.get(project.container(s)), "status", None) != "running"]
    if down:
        raise NotRunning(f"stack {project.name}: {' and '.join(down)} not running", hint="run 'tcel up' first")
