"""The stack as Docker Swarm services across the swarm's nodes: broker and backend on the data node, a
replicated worker service spread over the nodes, passwords as secrets, the worker image through a registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import credentials as stored
from ..credentials import Credentials
from ..errors import ImageError, NotRunning, PortInUse, ServiceUnreachable, UsageError
from ..names import BACKEND_PORT, BROKER_PORT, LABEL_QUEUES, SERVICES
from ..output import Progress
from ..remote_control import worker_node
from . import engine, logs, readiness, refuse_other_engine, specs, swarm_engine
from .base import DownReport, ReloadReport, ServiceStatus, Stack, UpOptions, UpReport
from .images import build_flower_image, build_worker_image, flower_image_name, image_exists, worker_image_name
from .lock import project_lock
from .specs import ServiceSpec
from .up import free_port, port_free
from .worker_image import worker_image

if TYPE_CHECKING:
    import docker
    from docker.models.services import Service

    from ..settings import Project

EVERY_INTERFACE = "0.0.0.0"
PUBLISHED_NOTE = "Swarm publishes the broker's and backend's ports on every interface of the data node {node}"
FLOWER_PUBLISHED_NOTE = (
    "Swarm publishes Flower's port {port} on every interface of the data node {node} too, behind its generated login"
)
REGISTRY_PUBLISHED_NOTE = ", and the registry's port {port} on every interface of every node"
# what `up` compares and changes on a running worker service (a rolling update), besides its image
WORKER_SETTINGS = ("CELERY_WORKER_CONCURRENCY", "CELERY_WORKER_QUEUES")
FAILURES_BEFORE_GIVING_UP = 3
REGISTRY_WAIT = 60.0
# the mirror answers its API root (the official registry:2 image has busybox's wget, as the stand-in has)
MIRROR_HEALTH = ("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{swarm_engine.REGISTRY_PORT}/v2/")


class SwarmStack(Stack):
    """Services `tcel-<project>-broker`, `-backend`, `-worker`, `-flower` with --flower (and `-registry`,
    `-registry-mirror` when tcel carries the images itself) on the overlay network `tcel-<project>`."""

    @cached_property
    def client(self) -> docker.DockerClient:
        return engine.connect()

    def services(self) -> dict[str, Service]:
        """The project's services by what they are: broker, backend, worker, flower, registry, registry-mirror."""
        if not self._in_swarm():
            return {}
        with engine.engine_errors():
            return {swarm_engine.service_of(s): s for s in swarm_engine.services(self.client, self.project)}

    def _in_swarm(self) -> bool:
        with engine.engine_errors():
            return swarm_engine.is_manager(self.client)

    def status(self) -> list[ServiceStatus]:
        found = self.services()
        if not found:
            return []
        with engine.engine_errors():
            nodes = swarm_engine.node_names(self.client)
            rows = []
            for kind, service in sorted(found.items(), key=lambda item: _order(item[0])):
                tasks = service.tasks(filters={"desired-state": "running"})
                counts = _replica_counts(service, tasks)
                rows.extend(
                    replace(_task_status(kind, service, task, nodes), replicas=counts)
                    for task in sorted(tasks, key=lambda t: t.get("Slot", 0))
                )
            return rows

    def up(self, options: UpOptions, progress: Progress) -> UpReport:
        with project_lock(self.project), engine.engine_errors():
            client = self.client
            # before anything is made or a swarm initialised
            refuse_other_engine(self.project, "swarm", [c.name for c in engine.containers(client, self.project)])
            notes: list[str] = []
            if swarm_engine.membership(client.info(), options.swarm_init):
                progress("making this engine a single-node swarm manager")
                swarm_engine.init_swarm(client)
                notes.append(
                    "this engine is now a single-node swarm manager on 127.0.0.1 (for other machines "
                    "to join, 'docker swarm init --advertise-addr ADDRESS' instead); leaving it later "
                    "('docker swarm leave') cuts name resolution in the networks of the plain-container "
                    "stacks on this engine: 'tcel down' and 'tcel up' them afterwards"
                )
            existing = {swarm_engine.service_of(s): s for s in swarm_engine.services(client, self.project)}
            if options.workers_only and not {"broker", "backend"} <= existing.keys():
                raise NotRunning(
                    f"stack {self.project.name}: broker or backend not running", hint="run 'tcel up' first"
                )
            kept = stored.kept(self.project)
            data_node = self._data_node(options.data_node, kept.get("TCEL_DATA_NODE"), existing)
            access = self._credentials(options, existing, data_node, notes)
            with_flower = not options.workers_only and (options.flower or "flower" in existing)
            if with_flower:
                access = self._flower_access(options, existing, access, data_node, notes)
            report = UpReport(access, notes=notes, flower=with_flower)
            made_from = worker_image(self.project, options.app, options.worker_command)
            settings = {
                "TCEL_ENGINE": "swarm",
                "TCEL_BROKER_IMAGE": options.broker_image,
                "TCEL_BACKEND_IMAGE": options.backend_image,
                "TCEL_PYTHON_IMAGE": options.python_image,
                "TCEL_CONCURRENCY": str(options.concurrency or ""),
                "TCEL_REGISTRY": options.registry or "",
                "TCEL_DATA_NODE": data_node.attrs["Description"]["Hostname"],
                "TCEL_REGISTRY_PORT": kept.get("TCEL_REGISTRY_PORT", ""),
                **made_from.kept(),
            }
            # before anything is made: a later command (`down` after a failed `up`) finds the stack on Swarm
            stored.save(self.project, access, settings)
            worker_image_tag = worker_image_name(made_from, options.python_image)
            report.built = options.build or not image_exists(client, worker_image_tag)
            if report.built:
                build_worker_image(client, made_from, worker_image_tag, options.python_image, progress)
            flower_image = flower_image_name(options.python_image) if with_flower else None
            if flower_image and not image_exists(client, flower_image):  # before anything is made, as the worker's
                build_flower_image(client, flower_image, options.python_image, progress)
                report.built = True
            ran_before = {service.id for service in existing.values()}
            try:
                network = swarm_engine.network(client, self.project)
                registry = self._registry(options, kept, existing, network.name, report, progress)
                image = _push(client, worker_image_tag, registry, progress)
                swarm_engine.label_data_node(client, self.project, data_node)
                on_data_node = [f"node.labels.{swarm_engine.data_label(self.project)}==true"]
                for spec in (specs.broker(self.project, options, access), specs.backend(self.project, options, access)):
                    if spec.service not in existing:
                        progress(f"creating service {self.project.container(spec.service)}")
                        existing[spec.service] = swarm_engine.create_service(
                            client, self.project, spec, network.name, 1, on_data_node
                        )
                        report.created.append(existing[spec.service].name)
                self._workers(options, existing, access, image, network.name, report, progress)
                stored.save(
                    self.project,
                    access,
                    {**settings, "TCEL_REGISTRY_PORT": "" if options.registry else registry.rpartition(":")[2]},
                )
                if {self.project.container("broker"), self.project.container("backend")} & set(report.created):
                    report.notes.append(
                        _published_note(
                            data_node.attrs["Description"]["Hostname"],
                            None if options.registry else registry.rpartition(":")[2],
                        )
                    )
                if flower_image:  # after the broker's note, which Flower's ("...too") follows
                    self._flower(flower_image, existing, access, registry, network.name, data_node, report, progress)
            except BaseException:
                self._undo(ran_before, progress)
                raise
            return report

    def _undo(self, ran_before: set[str], progress: Progress) -> None:
        """After a failed `up`: remove the services it made (found again by label: one can exist that `up` did
        not get to record) and, when nothing of the stack ran before it, the network, secrets and data-node label
        too, as `down` does (the data volumes stay, as after `down`)."""
        try:
            made = [s for s in swarm_engine.services(self.client, self.project) if s.id not in ran_before]
            if not made and ran_before:
                return
            progress(f"up failed: removing the {len(made)} service(s) it made" if made else "up failed: cleaning up")
            if ran_before:
                swarm_engine.remove_services(self.client, self.project, made)
            else:
                self._remove(made)
        except Exception:
            pass

    def _data_node(self, asked: str | None, kept: str | None, existing: dict[str, Service]) -> Any:
        """The node the broker and backend run on: as asked, else as kept, else this manager. A running broker
        or backend is not moved: on another node they would start on empty volumes."""
        node = swarm_engine.node_of(self.client, asked or kept)
        refuse_data_node_move(
            self.project, kept, node.attrs["Description"]["Hostname"], sorted({"broker", "backend"} & existing.keys())
        )
        return node

    def _credentials(
        self, options: UpOptions, existing: dict[str, Service], data_node: Any, notes: list[str]
    ) -> Credentials:
        """The kept credentials (or new ones) and ports: the ones the services publish, else the ones asked
        for, else the kept ones, else the defaults, or a free port when the data node is this machine and the
        default is taken."""
        saved = stored.load(self.project)
        access = saved or stored.generate()
        here = data_node.id == self.client.info()["Swarm"]["NodeID"]
        bind = EVERY_INTERFACE if here else swarm_engine.node_address(data_node)

        def choose(service: str, asked: int | None, kept: int) -> int:
            if service in existing:
                return _published(existing[service]) or kept
            if asked or not here or port_free(EVERY_INTERFACE, kept):
                return asked or kept
            chosen = free_port(EVERY_INTERFACE)
            notes.append(
                f"port {kept} is taken: the {service} uses {chosen}, kept for project "
                f"{self.project.name} (--{service}-port chooses one)"
            )
            return chosen

        return access.with_ports(
            bind,
            choose("broker", options.broker_port, saved.broker_port if saved else BROKER_PORT),
            choose("backend", options.backend_port, saved.backend_port if saved else BACKEND_PORT),
        )

    def _flower_access(
        self,
        options: UpOptions,
        existing: dict[str, Service],
        access: Credentials,
        data_node: Any,
        notes: list[str],
    ) -> Credentials:
        """The credentials with Flower's login (kept, or new) and port: the one its service publishes, else the
        one asked for (refused when taken on this machine), else the kept one, else a free one when the data
        node is this machine and the kept one is taken."""
        here = data_node.id == self.client.info()["Swarm"]["NodeID"]
        kept, asked = access.flower_port, options.flower_port
        if "flower" in existing:
            port = _published(existing["flower"]) or kept
        elif asked:
            if here and not port_free(EVERY_INTERFACE, asked):
                raise PortInUse(
                    f"port {asked} on {EVERY_INTERFACE} for the flower is already in use",
                    hint="choose another with --flower-port or TCEL_FLOWER_PORT",
                )
            port = asked
        elif not here or port_free(EVERY_INTERFACE, kept):
            port = kept
        else:
            port = free_port(EVERY_INTERFACE)
            notes.append(
                f"port {kept} is taken: the flower uses {port}, kept for project {self.project.name} "
                "(--flower-port chooses one)"
            )
        return replace(access.with_flower_login(), flower_port=port)

    def _flower(
        self,
        local: str,
        existing: dict[str, Service],
        access: Credentials,
        registry: str,
        network: str,
        data_node: Any,
        report: UpReport,
        progress: Progress,
    ) -> None:
        """Create the Flower service on the data node (its port published there, as the broker's) from the image
        `local` (built by `up` before anything was made), pushed as the worker's; or bring a running one to it."""
        client = self.client
        flower = existing.get("flower")
        if flower is not None and _image_of(flower) == f"{registry}/{local}":
            return  # runs what tcel's files make now: nothing to push (a reload of the workers pays no push)
        image = _push(client, local, registry, progress, what="Flower image")
        if flower is None:
            progress(f"creating service {self.project.container('flower')}")
            on_data_node = [f"node.labels.{swarm_engine.data_label(self.project)}==true"]
            existing["flower"] = swarm_engine.create_service(
                client, self.project, specs.flower(access, image), network, 1, on_data_node
            )
            report.created.append(existing["flower"].name)
            report.notes.append(
                FLOWER_PUBLISHED_NOTE.format(port=access.flower_port, node=data_node.attrs["Description"]["Hostname"])
            )
        elif _image_of(flower) != image.split("@")[0]:
            progress(f"updating service {flower.name} to {image}")
            swarm_engine.update(flower, image=image)
            report.started.append(flower.name)

    def _registry(
        self,
        options: UpOptions,
        kept: dict[str, str],
        existing: dict[str, Service],
        network: str,
        report: UpReport,
        progress: Progress,
    ) -> str:
        """Where the worker image goes: --registry, else a registry service on this manager with a pull-through
        mirror on every other node, so that every node pulls it as 127.0.0.1:PORT (an address every engine
        trusts without TLS)."""
        if options.registry:
            return options.registry
        client = self.client
        if "registry" in existing:
            port = _published(existing["registry"])
        else:
            port = int(kept.get("TCEL_REGISTRY_PORT") or 0) or 5000
            if not port_free(EVERY_INTERFACE, port):
                port = free_port(EVERY_INTERFACE)
            progress(f"creating service {self.project.container('registry')} on port {port}")
            manager = [f"node.id=={client.info()['Swarm']['NodeID']}"]
            central = ServiceSpec(
                "registry",
                None,
                options.registry_image,
                ports={swarm_engine.REGISTRY_PORT: (EVERY_INTERFACE, port)},
                volumes={self.project.volume("registry"): "/var/lib/registry"},
            )
            existing["registry"] = swarm_engine.create_service(client, self.project, central, network, 1, manager)
            report.created.append(existing["registry"].name)
        if "registry-mirror" not in existing:
            others = [f"node.id!={client.info()['Swarm']['NodeID']}"]
            upstream = f"http://registry:{swarm_engine.REGISTRY_PORT}"  # the central one, over the overlay network
            mirror = ServiceSpec(
                "registry-mirror",
                None,
                options.registry_image,
                environment={"REGISTRY_PROXY_REMOTEURL": upstream},
                ports={swarm_engine.REGISTRY_PORT: (EVERY_INTERFACE, port)},
                health=MIRROR_HEALTH,
            )
            existing["registry-mirror"] = swarm_engine.create_service(
                client, self.project, mirror, network, 0, others, mode="global"
            )
            report.created.append(existing["registry-mirror"].name)
        address = f"127.0.0.1:{port}"
        _wait_registry(address, existing["registry"], progress)
        _wait_mirrors(client, existing["registry-mirror"], progress)
        return address

    def _workers(
        self,
        options: UpOptions,
        existing: dict[str, Service],
        access: Credentials,
        image: str,
        network: str,
        report: UpReport,
        progress: Progress,
    ) -> None:
        """Create the worker service, or bring its image, settings (concurrency, queues) and replica count to
        what is asked: a new image or setting is a rolling update, one replica at a time."""
        worker = existing.get("worker")
        replicas = _replicas(worker) if worker is not None else 0
        count = options.workers or replicas or 1
        spec = specs.worker(0, options, access, image)
        if worker is None:
            progress(f"creating service {self.project.container('worker')} with {count} replica(s)")
            existing["worker"] = swarm_engine.create_service(
                client=self.client,
                project=self.project,
                spec=spec,
                network_name=network,
                replicas=count,
                constraints=[],
            )
            report.created.append(existing["worker"].name)
            return
        changed = _setting_changes(worker, spec, keep_queues=options.queues is None)
        new_image = _spec_image(worker) != image
        if new_image or changed:
            what = [*(["new image"] if new_image and changed else []), *_described(changed)]
            progress(f"updating service {worker.name} " + (f"({', '.join(what)})" if what else f"to {image}"))
            labels = (
                {LABEL_QUEUES: spec.labels(self.project)[LABEL_QUEUES]} if "CELERY_WORKER_QUEUES" in changed else None
            )
            swarm_engine.update(worker, image=image, environment=changed, labels=labels)
            report.started.append(f"{worker.name} ({', '.join(what)})" if changed else worker.name)
        if count != replicas:
            progress(f"scaling service {worker.name} from {replicas} to {count}")
            swarm_engine.update(worker, replicas=count)
            (report.started if count > replicas else report.removed).append(
                f"{worker.name} ({replicas} -> {count} replicas)"
            )

    def wait_ready(self, credentials: Credentials, timeout: float, progress: Progress) -> float:
        found = self.services()
        since, started = time.time(), time.monotonic()
        nodes = self._worker_nodes(found.get("worker"), since + timeout, progress)
        placed = time.monotonic() - started

        def check(_pending: set[str], _broker_answered: float | None) -> None:
            for kind, service in found.items():
                _check_tasks(kind, service, since)

        return placed + readiness.wait_until_answering(
            credentials, nodes, check, timeout - placed, progress, flower="flower" in found
        )

    def _worker_nodes(self, worker: Service | None, deadline: float, progress: Progress) -> set[str]:
        """The Celery node names of the worker service's replicas, once Swarm runs as many tasks as replicas, all
        of the service's current image and settings, and no task it is replacing still runs (so that an old
        worker does not answer for its slot during a rolling update). A scale-down may keep any slots (worker-1
        and worker-3 of 4); a scale-up fills others."""
        if worker is None:
            return set()
        current = worker.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        while True:
            with engine.engine_errors():
                tasks = worker.tasks()
            wanted = [t for t in tasks if t["DesiredState"] == "running"]
            replacing = [t for t in tasks if t["DesiredState"] != "running" and t["Status"]["State"] == "running"]
            if (
                len(wanted) == _replicas(worker) and not replacing and all(_runs_spec(t, current) for t in wanted)
            ) or time.time() > deadline:
                return {worker_node(f"worker-{t['Slot']}") for t in wanted}
            progress(f"waiting for Swarm to place {_replicas(worker)} workers of {_image_of(worker)}")
            time.sleep(0.2)

    def replace_workers(
        self, options: UpOptions, grace: float, ready_timeout: float, progress: Progress
    ) -> ReloadReport:
        """Build and push the image the files make now; Swarm's rolling update replaces one worker at a time."""
        started = time.monotonic()
        report = self.up(options, progress)
        image = _image_of(self.services()["worker"])
        self.wait_ready(report.credentials, ready_timeout, progress)
        return ReloadReport(
            image, built=report.built, replaced=report.started, replace_seconds=time.monotonic() - started
        )

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        """`worker` means every worker, `worker-2` the worker in slot 2, `broker` the broker..."""
        found = self.services()
        kind = service if service in found or service is None else service.rpartition("-")[0]
        chosen = [s for k, s in found.items() if service is None or k == kind]
        if not chosen:
            raise NotRunning(f"stack {self.project.name} has no {service!r} service", hint="see 'tcel status'")
        wanted = None if service in found else service
        lines = _followed(chosen, tail) if follow else _interleaved(chosen, tail)
        return (line for line in lines if wanted is None or line[0] == wanted)

    def down(self, volumes: bool = False) -> DownReport:
        with project_lock(self.project, create=False), engine.engine_errors():
            found = list(self.services().values())
            if not found:
                plain = [c.name for c in engine.containers(self.client, self.project)]
                refuse_other_engine(self.project, "swarm", plain, command="down", volumes=volumes)
                if not self._in_swarm():
                    return DownReport([], [], [])
            return DownReport(
                containers=sorted(s.name for s in found),
                networks=self._remove(found),
                volumes=engine.remove_volumes(self.client, self.project) if volumes else [],
            )

    def _remove(self, found: list[Service]) -> list[str]:
        """Remove the services, then the project's networks and secrets, its data-node label, and this engine's
        tags of images pushed to its registry; the names of the networks removed."""
        swarm_engine.remove_services(self.client, self.project, found)
        networks = engine.remove_networks(self.client, self.project)
        for secret in self.client.secrets.list(filters=engine.project_filter(self.project)):
            secret.remove()
        swarm_engine.unlabel_data_node(self.client, self.project)
        registries = [s for s in found if swarm_engine.service_of(s) == "registry"]
        if registries:
            swarm_engine.untag_pushed(self.client, f"127.0.0.1:{_published(registries[0])}")
        return networks


def _runs_spec(task: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether a task was made from the service's current image and settings (not one a rolling update replaces)."""
    made = task["Spec"]["ContainerSpec"]
    return made["Image"] == current["Image"] and made.get("Env") == current.get("Env")


def _check_tasks(kind: str, service: Service, since: float) -> None:
    """Fail when the service's tasks keep failing on a node (an image it cannot pull, a container that exits at
    once). One failure here and there is Swarm's to retry (a pull that raced another on the same node)."""
    from collections import Counter

    with engine.engine_errors():
        errors = swarm_engine.failures_since(service, since)
    node, count = max(Counter(node for node, _ in errors).items(), key=lambda item: item[1], default=("", 0))
    if count >= FAILURES_BEFORE_GIVING_UP:
        last = next(error for where, error in errors if where == node)
        with engine.engine_errors():
            name = swarm_engine.node_names(service.client).get(node, node)
        raise NotRunning(
            f"{service.name}: {count} tasks failed on node {name}, the last: {last}",
            hint=f"see 'tcel logs {kind}' and 'docker service ps {service.name}'",
        )


def _order(kind: str) -> int:
    return SERVICES.index(kind) if kind in SERVICES else len(SERVICES)


def _task_status(kind: str, service: Service, task: dict[str, Any], nodes: dict[str, str]) -> ServiceStatus:
    slot = task.get("Slot")
    node = nodes.get(task.get("NodeID", ""), task.get("NodeID"))
    state = task["Status"]["State"]
    return ServiceStatus(
        service=kind,
        name=f"{service.name}.{slot}" if slot else f"{service.name}.{node}",
        hostname=f"worker-{slot}" if kind == "worker" else kind,
        state=state,
        # the registry's readiness is its task running; the stack's own services are probed by `status`
        ready=(state == "running") if kind.startswith("registry") else (None if state == "running" else False),
        image=_image_of(service),
        ports=[
            f"{EVERY_INTERFACE}:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
            for p in service.attrs["Spec"].get("EndpointSpec", {}).get("Ports") or []
        ],
        started_at=swarm_engine.task_started(task),
        node=node,
    )


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


def _published_note(node: str, registry_port: str | None) -> str:
    """What Swarm publishes on every interface (it has no per-address publishing): the data node's broker and
    backend ports, and the port of the registry tcel runs (the registry on the manager, a mirror on every other
    node)."""
    return PUBLISHED_NOTE.format(node=node) + (
        REGISTRY_PUBLISHED_NOTE.format(port=registry_port) if registry_port else ""
    )


def _setting_changes(worker: Service, spec: ServiceSpec, keep_queues: bool) -> dict[str, str | None]:
    """The worker settings (concurrency, queues) the spec asks for that the running service does not have:
    the new value, or None to drop it (back to the image's default); with `keep_queues`, the queues stay."""
    running = swarm_engine.container_environment(worker.attrs["Spec"]["TaskTemplate"]["ContainerSpec"])
    wanted = {
        key: spec.environment.get(key) for key in WORKER_SETTINGS if not (keep_queues and key == "CELERY_WORKER_QUEUES")
    }
    return {key: value for key, value in wanted.items() if running.get(key) != value}


def _described(changed: dict[str, str | None]) -> list[str]:
    names = {"CELERY_WORKER_CONCURRENCY": "concurrency", "CELERY_WORKER_QUEUES": "queues"}
    return [
        f"{names[key]} {value}" if value else f"{names[key]} as the image's default" for key, value in changed.items()
    ]


def _spec_image(service: Service) -> str:
    """The image the service runs, as its spec names it (Swarm may add the digest it resolved: `...@sha256:...`)."""
    return service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def _replica_counts(service: Service, tasks: list[dict[str, Any]]) -> tuple[int, int]:
    """How many of the service's tasks run, and how many it wants (a global service: one per node it has a
    task for)."""
    running = sum(1 for task in tasks if task["Status"]["State"] == "running")
    return running, _replicas(service) if "Replicated" in service.attrs["Spec"]["Mode"] else len(tasks)


def _image_of(service: Service) -> str:
    return _spec_image(service).split("@")[0]


def _replicas(service: Service) -> int:
    return int(service.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0))


def _published(service: Service) -> int | None:
    ports = service.attrs["Spec"].get("EndpointSpec", {}).get("Ports") or []
    return int(ports[0]["PublishedPort"]) if ports else None


def _push(
    client: docker.DockerClient, image: str, registry: str, progress: Progress, what: str = "worker image"
) -> str:
    """Tag the worker (or Flower) image into the registry and push it; the name every node pulls. Its tag is a
    hash of the files it is built from, so it names one build. (Not pinned by the digest the push returns: Docker
    20.10 fails one of two pulls by digest that start together on a node, and in a clean CI run every retry of a
    node's two workers failed that way.)"""
    import docker

    repository, _, tag = image.rpartition(":")
    target = f"{registry}/{repository}"
    progress(f"pushing {target}:{tag}")
    client.images.get(image).tag(target, tag)
    failed: str | None = None
    try:
        for event in client.images.push(target, tag=tag, stream=True, decode=True):
            if "error" in event:
                failed = event["error"]
                break
    except docker.errors.APIError as exc:
        failed = exc.explanation or str(exc)
    if failed is not None:
        swarm_engine.untag(client, f"{target}:{tag}")  # nothing of a failed push stays
        raise ImageError(
            f"cannot push the {what} to {registry}: {failed}",
            hint="check --registry: every node must be able to pull from it",
        )
    return f"{target}:{tag}"


def _wait_registry(address: str, service: Service, progress: Progress) -> None:
    """Wait until the registry tcel runs answers its API root; fail at once when its tasks keep failing."""
    import urllib.error
    import urllib.request

    since = time.time()
    deadline = time.monotonic() + REGISTRY_WAIT
    while True:
        _check_tasks("registry", service, since)
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise ServiceUnreachable(
                    f"the registry at {address} does not answer ({exc})",
                    hint="see 'tcel logs registry', or pass --registry HOST:PORT",
                ) from None
        progress(f"waiting for the registry at {address}")
        time.sleep(0.3)


def _wait_mirrors(client: docker.DockerClient, mirror: Service, progress: Progress) -> None:
    """Wait until the registry mirror runs on every other node that takes tasks: a worker placed on a node
    before its mirror listens cannot pull its image there (Swarm rejects the task, and `up` gives up after a
    few such failures). A mirror's task runs only once its healthcheck has had an answer from it: the registry
    starts listening only after it has reached the central one, which took 5 s (a lost DNS query) in some
    starts here."""
    manager = client.info()["Swarm"]["NodeID"]
    since = time.time()
    deadline = time.monotonic() + REGISTRY_WAIT
    while True:
        with engine.engine_errors():
            nodes = {
                n.id
                for n in client.nodes.list()
                if n.id != manager
                and n.attrs["Status"]["State"] == "ready"
                and n.attrs["Spec"]["Availability"] == "active"
            }
            missing = nodes - {task["NodeID"] for task in swarm_engine.running_tasks(mirror)}
        if not missing:
            return
        _check_tasks("registry-mirror", mirror, since)
        if time.monotonic() > deadline:
            image = mirror.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
            raise ServiceUnreachable(
                f"the registry mirror ({image}) does not run and answer its healthcheck on {len(missing)} node(s) "
                f"after {REGISTRY_WAIT:.0f}s",
                hint=f"see 'docker service ps {mirror.name}'; an image other than registry:2 needs the wget its "
                "healthcheck runs (TCEL_REGISTRY_IMAGE)",
            )
        progress(f"waiting for the registry mirror on {len(missing)} node(s)")
        time.sleep(0.3)


def _service_lines(service: Service, tail: int | None, follow: bool) -> Iterator[tuple[str, str, str]]:
    """(time stamp, source, text) of each line of a service's log; a worker's source is `worker-<slot>`, found
    from the task id Swarm puts in each line's details."""
    kind = swarm_engine.service_of(service)
    slots: dict[str, int] = {}
    pending = b""
    for chunk in service.logs(
        stdout=True, stderr=True, timestamps=True, details=True, follow=follow, tail=tail if tail is not None else "all"
    ):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            stamp, _, text = line.decode(errors="replace").partition(" ")
            task = None
            if text.startswith("com.docker.swarm."):
                details, _, text = text.partition(" ")
                task = dict(item.partition("=")[::2] for item in details.split(",")).get("com.docker.swarm.task.id")
            if kind == "worker" and task and task not in slots:
                slots.update({t["ID"]: t.get("Slot", 0) for t in service.tasks()})
            yield stamp, f"{kind}-{slots[task]}" if kind == "worker" and slots.get(task) else kind, text


def _interleaved(services: list[Service], tail: int | None) -> Iterator[tuple[str, str]]:
    with engine.engine_errors():
        return logs.in_time_order(line for service in services for line in _service_lines(service, tail, follow=False))


def _followed(services: list[Service], tail: int | None) -> Iterator[tuple[str, str]]:
    return logs.merged(
        [((source, text) for _, source, text in _service_lines(service, tail, follow=True)) for service in services]
    )
