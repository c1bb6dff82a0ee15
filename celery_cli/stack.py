"""The stack: one project's broker, backend and worker containers, their network and volumes."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import connection as connections
from .connection import Connection
from .engine import connect, engine_errors
from .errors import NotRunning, PortInUse, ServiceUnreachable, TcelError, WaitTimeout
from .images import build_worker_image, ensure_pulled, image_exists, worker_image_name
from .output import Progress
from .control import Control, worker_node
from .probes import BrokerRefusedLogin, probe_backend, probe_broker
from .settings import LABEL_NUMBER, LABEL_PROJECT, LABEL_SERVICE, Project

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

SERVICES = ("broker", "backend", "worker")
STOP_TIMEOUT = 10
# A worker gets a second for its cold shutdown, then SIGKILL: with late acks and reject-on-worker-lost its
# running and reserved tasks go back to the queue either way (tests/faults/test_worker_killed.py).
WORKER_STOP_TIMEOUT = 1
PASSED_TO_WORKERS = ("TCEL_ADD_DELAY",)
REDIS_CONF = "tcel-redis.conf"


@dataclass(frozen=True)
class UpOptions:
    bind: str
    broker_port: int
    backend_port: int
    broker_image: str
    backend_image: str
    python_image: str
    workers: int | None = None
    concurrency: int | None = None
    build: bool = False
    workers_only: bool = False  # `tcel scale`: never create or start the broker or backend


@dataclass
class UpReport:
    connection: Connection
    created: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    built: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.started or self.removed or self.built)


@dataclass
class DownReport:
    containers: list[str]
    networks: list[str]
    volumes: list[str]


@dataclass
class ServiceStatus:
    """What `tcel status` shows of one container."""

    service: str
    name: str
    hostname: str
    state: str
    ready: bool | None
    image: str
    ports: list[str]
    started_at: datetime | None

    @property
    def uptime(self) -> float | None:
        if self.state != "running" or self.started_at is None:
            return None
        return max(0.0, (datetime.now(timezone.utc) - self.started_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat() if self.started_at else None
        data["uptime_seconds"] = round(self.uptime, 1) if self.uptime is not None else None
        return data


class Stack:
    """Everything tcel does to one project's containers; it only touches what carries the project's label."""

    def __init__(self, project: Project) -> None:
        self.project = project

    @cached_property
    def client(self) -> docker.DockerClient:
        return connect()

    # ---- reading ---------------------------------------------------------------------------------

    def containers(self) -> list[Container]:
        """The project's containers, broker first, then backend, then workers by number."""
        with engine_errors():
            found = self.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={self.project.name}"})
        return sorted(found, key=lambda c: (SERVICES.index(_service(c)), _number(c)))

    def status(self) -> list[ServiceStatus]:
        """The containers as the engine reports them; `ready` is left for the caller to probe (None)."""
        return [
            ServiceStatus(
                service=_service(c),
                name=c.name,
                hostname=c.attrs["Config"]["Hostname"],
                state=c.status,
                ready=None if c.status == "running" else False,
                image=c.attrs["Config"]["Image"],
                ports=_ports(c),
                started_at=_started_at(c),
            )
            for c in self.containers()
        ]

    # ---- up --------------------------------------------------------------------------------------

    def up(self, options: UpOptions, progress: Progress) -> UpReport:
        """Create or start whatever of the stack is missing or stopped; leave what runs alone."""
        with self._lock(), engine_errors():  # one clear line for whatever the engine refuses in here
            existing = {c.name: c for c in self.containers()}
            # a running stack keeps its address and ports, whatever the options say now
            broker_ip, broker_port = _binding(existing.get(self.project.container("broker")), 5672)
            _, backend_port = _binding(existing.get(self.project.container("backend")), 6379)
            connection = (connections.load(self.project) or connections.generate()).with_ports(
                broker_ip or options.bind, broker_port or options.broker_port, backend_port or options.backend_port
            )
            if options.workers_only:
                self._require_running(existing, ("broker", "backend"))
            report = UpReport(connection)
            worker_count = options.workers or sum(_service(c) == "worker" for c in existing.values()) or 1
            wanted = ["broker", "backend", *(f"worker-{n}" for n in range(1, worker_count + 1))]
            for service, image in (("broker", options.broker_image), ("backend", options.backend_image)):
                if self.project.container(service) not in existing:
                    ensure_pulled(self.client, image, progress)
            self._check_ports_free(existing, connection)
            worker_image = worker_image_name(self.project, options.python_image)
            report.built = self._ensure_worker_image(options, worker_image, progress)
            report.removed += self._remove_stale_workers(existing, worker_image)
            made: list[Any] = []
            try:
                network = self._ensure(self._network, made)
                for service in ("broker", "backend"):
                    self._ensure(lambda service=service: self._volume(service), made)
                for key in wanted:
                    name = self.project.container(*_split(key))
                    if name not in existing:
                        progress(f"creating {name}")
                        existing[name] = self._create(key, options, connection, network, worker_image)
                        made.append(existing[name])
                        report.created.append(name)
                stopped = [existing[self.project.container(*_split(k))] for k in wanted]
                stopped = [c for c in stopped if c.status != "running"]
                progress(f"starting {', '.join(c.name for c in stopped)}" if stopped else "already running")
                self._start_all(stopped)
                report.started += [c.name for c in stopped if c.name not in report.created]
            except BaseException:
                self._remove_made(made)
                raise
            if options.workers is not None:
                extra = [c for c in existing.values() if _service(c) == "worker" and _number(c) > worker_count]
                self._stop_and_remove(extra)
                report.removed += [c.name for c in extra]
            connections.save(self.project, connection)
            return report

    def _require_running(self, existing: dict[str, Container], services: Iterable[str]) -> None:
        down = [s for s in services if getattr(existing.get(self.project.container(s)), "status", None) != "running"]
        if down:
            raise NotRunning(f"stack {self.project.name}: {' and '.join(down)} not running", hint="run 'tcel up' first")

    def _ensure_worker_image(self, options: UpOptions, worker_image: str, progress: Progress) -> bool:
        """Build the worker image if it is missing or a build is asked for; True if built."""
        if options.build or not image_exists(self.client, worker_image):
            build_worker_image(self.client, self.project, worker_image, options.python_image, progress)
            return True
        return False

    def _remove_stale_workers(self, existing: dict[str, Container], worker_image: str) -> list[str]:
        """Workers made from another image (tasks.py or the Dockerfile changed, or --build) are replaced."""
        image_id = self.client.images.get(worker_image).id
        stale = [c for c in existing.values() if _service(c) == "worker" and c.attrs["Image"] != image_id]
        self._stop_and_remove(stale)
        for c in stale:
            del existing[c.name]
        self._remove_unused_images({c.attrs["Image"] for c in stale})
        return [c.name for c in stale]

    def _remove_unused_images(self, image_ids: set[str]) -> None:
        """Old worker images go once no container uses them; the engine refuses while one does."""
        import docker

        for image_id in image_ids:
            try:
                if self.client.images.get(image_id).labels.get("io.tcel.image") == "worker":
                    self.client.images.remove(image_id)
            except docker.errors.APIError:
                pass  # still used by a container, or already gone

    def _check_ports_free(self, existing: dict[str, Container], connection: Connection) -> None:
        """Name the taken port before anything is made, rather than leave half a stack behind."""
        for service, port, option in (
            ("broker", connection.broker_port, "--broker-port or TCEL_BROKER_PORT"),
            ("backend", connection.backend_port, "--backend-port or TCEL_BACKEND_PORT"),
        ):
            container = existing.get(self.project.container(service))
            if container is not None and container.status == "running":
                continue
            if not _port_free(connection.bind, port):
                raise _port_in_use(service, connection.bind, port, option)

    def _ensure(self, make: Callable[[], tuple[Any, bool]], made: list[Any]) -> Any:
        thing, created = make()
        if created:
            made.append(thing)
        return thing

    def _network(self) -> tuple[Any, bool]:
        labelled = self.client.networks.list(filters={"label": f"{LABEL_PROJECT}={self.project.name}"})
        found = [n for n in labelled if n.name == self.project.network]
        if found:
            return found[0], False
        return self.client.networks.create(self.project.network, driver="bridge", labels=self.project.labels), True

    def _volume(self, service: str) -> tuple[Any, bool]:
        import docker

        name = self.project.volume(service)
        try:
            volume = self.client.volumes.get(name)
        except docker.errors.NotFound:
            labels = {**self.project.labels, LABEL_SERVICE: service}
            return self.client.volumes.create(name, labels=labels), True
        if (volume.attrs.get("Labels") or {}).get(LABEL_PROJECT) != self.project.name:
            raise TcelError(
                f"volume {name} exists but was not made by tcel for project {self.project.name}",
                hint="remove or rename it, or choose another --project-name",
            )
        return volume, False

    def _create(
        self, key: str, options: UpOptions, connection: Connection, network: Any, worker_image: str
    ) -> Container:
        service, number = _split(key)
        spec: dict[str, Any]
        if service == "broker":
            spec = {
                "image": options.broker_image,
                "environment": {
                    "RABBITMQ_DEFAULT_USER": connection.broker_user,
                    "RABBITMQ_DEFAULT_PASS": connection.broker_password,
                },
                "ports": {"5672/tcp": (connection.bind, connection.broker_port)},
                "volumes": {self.project.volume("broker"): {"bind": "/var/lib/rabbitmq", "mode": "rw"}},
            }
        elif service == "backend":
            spec = {
                "image": options.backend_image,
                # the password goes in a file copied in before start, not on a command line `docker inspect` shows
                "command": ["redis-server", f"/etc/{REDIS_CONF}"],
                "ports": {"6379/tcp": (connection.bind, connection.backend_port)},
                "volumes": {self.project.volume("backend"): {"bind": "/data", "mode": "rw"}},
            }
        else:
            environment = connection.inside_network()
            if options.concurrency:
                environment["CELERY_WORKER_CONCURRENCY"] = str(options.concurrency)
            environment.update({k: os.environ[k] for k in PASSED_TO_WORKERS if k in os.environ})
            # Cold shutdown: running tasks go back to the queue instead of being waited for (SIGTERM's warm shutdown)
            spec = {"image": worker_image, "environment": environment, "stop_signal": "SIGQUIT"}
        hostname = key
        labels = {**self.project.labels, LABEL_SERVICE: service, LABEL_NUMBER: str(number or 0)}
        container = self.client.containers.create(
            name=self.project.container(service, number),
            hostname=hostname,
            labels=labels,
            network=network.name,
            networking_config={network.name: self.client.api.create_endpoint_config(aliases=[hostname])},
            init=True,  # PID 1 forwards SIGTERM, so every service stops at once
            detach=True,
            **spec,
        )
        if service == "backend":
            container.put_archive("/etc", _redis_conf(connection.backend_password))
        return container

    def _start_all(self, containers: list[Container]) -> None:
        import docker

        def start(container: Container) -> None:
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise _start_error(container, exc) from None
            container.reload()

        _parallel(start, containers)

    def _remove_made(self, made: list[Any]) -> None:
        """Undo what a failed `up` made, newest first, ignoring what is already gone."""
        import docker

        for thing in reversed(made):
            try:
                thing.remove(force=True) if hasattr(thing, "status") else thing.remove()
            except docker.errors.APIError:
                pass

    # ---- readiness -------------------------------------------------------------------------------

    def wait_ready(self, connection: Connection, timeout: float, progress: Progress) -> float:
        """Wait until the broker takes a login, the backend a PING and every worker a ping; return seconds."""
        started = time.monotonic()
        deadline = started + timeout
        containers = {c.name: c for c in self.containers()}
        workers = {worker_node(c.attrs["Config"]["Hostname"]): c for c in containers.values() if _service(c) == "worker"}
        pending = {"broker", "backend", *workers}
        control = Control(connection.broker_url())
        last_check = 0.0
        try:
            while True:
                for service, probe in (("broker", probe_broker), ("backend", probe_backend)):
                    if service in pending:
                        try:
                            probe(connection, 0.5)
                            pending.discard(service)
                        except BrokerRefusedLogin:
                            raise
                        except ServiceUnreachable:
                            pass
                if "broker" not in pending and pending & workers.keys():
                    pending -= control.ping(sorted(pending & workers.keys()), 0.25)
                if not pending:
                    return time.monotonic() - started
                if time.monotonic() - last_check > 1.0:
                    self._check_alive(containers.values())
                    last_check = time.monotonic()
                waiting = ", ".join(sorted(_pending_label(p) for p in pending))
                progress(f"waiting for {waiting}")
                if time.monotonic() > deadline:
                    raise WaitTimeout(
                        f"{waiting} not ready after {timeout:.0f}s",
                        hint="see 'tcel status' and 'docker logs' of those containers, or raise --timeout",
                    )
                time.sleep(0.1)
        finally:
            control.close()

    def _check_alive(self, containers: Iterable[Container]) -> None:
        """Fail at once, with the container's last log line, when a service exits while we wait."""
        with engine_errors():
            for c in containers:
                c.reload()
                if c.status in ("exited", "dead"):
                    tail = c.logs(tail=40).decode(errors="replace").strip().splitlines()
                    code = c.attrs["State"].get("ExitCode")
                    where = self._source_line(tail)
                    raise NotRunning(
                        f"{c.name} exited with code {code}" + (f": {tail[-1].strip()}" if tail else "")
                        + (f" ({where})" if where else ""),
                        hint=f"see 'tcel logs {_hostname(c)}'; fix the cause, then run 'tcel up' again",
                    )

    def _source_line(self, log: list[str]) -> str | None:
        """The project file and line a worker's traceback ends in, such as 'tasks.py line 3'."""
        for line in reversed(log):
            found = re.search(r'File "/home/user/([^"/]+)", line (\d+)', line)
            if found and (self.project.build_context / found.group(1)).is_file():
                return f"{self.project.build_context / found.group(1)} line {found.group(2)}"
        return None

    # ---- logs ------------------------------------------------------------------------------------

    def logs(self, service: str | None, follow: bool, tail: int | None) -> Iterator[tuple[str, str]]:
        """(container host name, line) pairs: interleaved by time, and as they come with `follow`."""
        containers = [c for c in self.containers() if _matches(c, service)]
        if not containers:
            what = f"no {service!r} container" if service else "no containers"
            raise NotRunning(f"stack {self.project.name} has {what}", hint="see 'tcel status'")
        if follow:
            yield from self._follow(containers, tail)
            return
        lines = []
        with engine_errors():
            for c in containers:
                raw = c.logs(timestamps=True, tail=tail if tail is not None else "all").decode(errors="replace")
                for entry in raw.splitlines():
                    stamp, _, text = entry.partition(" ")
                    lines.append((_sortable(stamp), _hostname(c), text))
        for _, name, text in sorted(lines, key=lambda line: line[0]):
            yield name, text

    def _follow(self, containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
        import queue
        import threading

        lines: queue.Queue[tuple[str, str] | None] = queue.Queue()

        def pump(container: Container) -> None:
            try:
                stream = container.logs(stream=True, follow=True, tail=tail if tail is not None else "all")
                pending = b""
                for chunk in stream:
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        lines.put((_hostname(container), line.decode(errors="replace")))
            finally:
                lines.put(None)

        for c in containers:
            threading.Thread(target=pump, args=(c,), daemon=True).start()
        running = len(containers)
        while running:
            item = lines.get()
            if item is None:
                running -= 1
            else:
                yield item

    # ---- down ------------------------------------------------------------------------------------

    def down(self, volumes: bool = False) -> DownReport:
        """Stop and remove the project's containers and network (and volumes if asked)."""
        label = {"label": f"{LABEL_PROJECT}={self.project.name}"}
        with self._lock(create=False), engine_errors():
            containers = self.containers()
            self._stop_and_remove(containers)
            networks = self.client.networks.list(filters=label)
            for network in networks:
                network.remove()
            removed_volumes = self.client.volumes.list(filters=label) if volumes else []
            for volume in removed_volumes:
                volume.remove(force=True)
        return DownReport(
            containers=[c.name for c in containers],
            networks=[n.name for n in networks],
            volumes=[v.name for v in removed_volumes],
        )

    def _stop_and_remove(self, containers: list[Container]) -> None:
        import docker

        def stop_and_remove(container: Container) -> None:
            try:
                if container.status == "running":
                    container.stop(timeout=WORKER_STOP_TIMEOUT if _service(container) == "worker" else STOP_TIMEOUT)
                container.remove(force=True)
            except docker.errors.NotFound:
                pass

        _parallel(stop_and_remove, containers)

    @contextmanager
    def _lock(self, create: bool = True) -> Iterator[None]:
        """One `up` or `down` at a time per project, across processes."""
        import fcntl

        if not create and not self.project.state_dir.is_dir():
            yield
            return
        self.project.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.project.state_dir / f"{self.project.name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def _parallel(action: Callable[[Any], None], items: list[Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


def _sortable(stamp: str) -> str:
    """Docker's RFC 3339 times drop trailing zeros of the fraction; pad it so that text order is time order."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<9}"


def _hostname(container: Container) -> str:
    return container.attrs["Config"]["Hostname"]


def _matches(container: Container, service: str | None) -> bool:
    """`worker` means every worker; `worker-2`, `broker` or a full container name mean that one."""
    if service is None:
        return True
    return service in (_service(container), _hostname(container), container.name)


def _split(key: str) -> tuple[str, int | None]:
    service, _, number = key.partition("-")
    return service, int(number) if number else None


def _service(container: Container) -> str:
    return container.labels.get(LABEL_SERVICE, "worker")


def _number(container: Container) -> int:
    return int(container.labels.get(LABEL_NUMBER, "0"))


def _pending_label(node_or_service: str) -> str:
    return node_or_service.partition("@")[2] or node_or_service


def _redis_conf(password: str) -> bytes:
    """A tar holding Redis's config: the password, and the append-only file that keeps results."""
    import io
    import tarfile

    text = f"requirepass {password}\nappendonly yes\n".encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(REDIS_CONF)
        member.size, member.mode = len(text), 0o644  # read by the redis user the image switches to
        tar.addfile(member, io.BytesIO(text))
    return archive.getvalue()


def _binding(container: Container | None, port: int) -> tuple[str | None, int | None]:
    """The host address and port a container's port is published on, if it is."""
    bindings = container.attrs["HostConfig"].get("PortBindings") or {} if container is not None else {}
    for binding in bindings.get(f"{port}/tcp") or []:
        if binding.get("HostPort"):
            return binding.get("HostIp") or None, int(binding["HostPort"])
    return None, None


def _ports(container: Container) -> list[str]:
    published = container.attrs["NetworkSettings"].get("Ports") or {}
    bindings = container.attrs["HostConfig"].get("PortBindings") or {}
    ports = published if container.status == "running" else bindings
    return [
        f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{inner}"
        for inner, items in sorted(ports.items())
        for b in items or []
    ]


def _started_at(container: Container) -> datetime | None:
    raw = container.attrs["State"].get("StartedAt", "")
    if not raw or raw.startswith("0001"):
        return None
    return datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00")


def _port_free(bind: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as Docker's proxy does: connections of an earlier listener in TIME_WAIT do not block the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError:
            return False
    return True


def _port_in_use(service: str, bind: str, port: int, option: str) -> PortInUse:
    return PortInUse(f"port {port} on {bind} for the {service} is already in use", hint=f"choose another with {option}")


def _start_error(container: Container, exc: Exception) -> TcelError:
    text = str(getattr(exc, "explanation", None) or exc)
    if "port is already allocated" in text or "address already in use" in text:
        service = _service(container)
        where = re.search(r"(\d+\.\d+\.\d+\.\d+:\d+)", text)
        return PortInUse(
            f"{where.group(1) if where else 'a port'} for the {service} is already in use",
            hint=f"choose another with --{service}-port or TCEL_{service.upper()}_PORT",
        )
    return TcelError(f"cannot start {container.name}: {text}", hint="see 'docker logs " + container.name + "'")
