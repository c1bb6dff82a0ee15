"""`tcel up`, `tcel down`, `tcel logs`, `tcel scale`: the stack's containers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..output import Output
from .options import Json, ProjectDir, ProjectName

if TYPE_CHECKING:
    from ..connection import Connection
    from ..stack import UpOptions, UpReport

# The services are imported inside the commands, so that `tcel --help` loads none of them.


def up(
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
    workers: Annotated[
        Optional[int], typer.Option(min=1, max=32, help="Worker containers (default: as many as run, else 1).")
    ] = None,
    concurrency: Annotated[
        Optional[int], typer.Option(min=1, max=256, help="Processes per worker (default: the image's, 10).")
    ] = None,
    build: Annotated[bool, typer.Option("--build", help="Rebuild the worker image and replace older workers.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until every service answers.")] = True,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the stack to answer.")] = 120,
    bind: Annotated[
        Optional[str], typer.Option(help="Address to publish ports on [env TCEL_BIND; default 127.0.0.1].")
    ] = None,
    broker_port: Annotated[
        Optional[int], typer.Option(min=1, max=65535, help="Host port for RabbitMQ [env TCEL_BROKER_PORT; 5672].")
    ] = None,
    backend_port: Annotated[
        Optional[int], typer.Option(min=1, max=65535, help="Host port for Redis [env TCEL_BACKEND_PORT; 6379].")
    ] = None,
    broker_image: Annotated[
        Optional[str], typer.Option(help="RabbitMQ image [env TCEL_BROKER_IMAGE; rabbitmq:4].")
    ] = None,
    backend_image: Annotated[Optional[str], typer.Option(help="Redis image [env TCEL_BACKEND_IMAGE; redis:7].")] = None,
    python_image: Annotated[
        Optional[str], typer.Option(help="Base of the worker image [env TCEL_PYTHON_IMAGE; python:3.12-slim].")
    ] = None,
    json: Json = False,
) -> None:
    """Start the stack (RabbitMQ, Redis, workers) and wait until it works.

    Creates only what is missing and starts only what is stopped, so running it again is safe.
    Credentials are generated on the first run and kept in ~/.local/state/tcel/<project>.env (owner-only).
    """
    from ..connection import state_file
    from ..settings import resolve_project
    from ..stack import Stack

    out = Output(json)
    project = resolve_project(project_dir, project_name)
    options = _options(
        bind, broker_port, backend_port, broker_image, backend_image, python_image,
        workers=workers, concurrency=concurrency, build=build,
    )
    stack = Stack(project)
    with out.status(f"bringing up stack {project.name}") as progress:
        report = stack.up(options, progress)
        ready_after = stack.wait_ready(report.connection, timeout, progress) if wait else None
    if json:
        out.data(_up_json(project.name, report, ready_after, str(state_file(project))))
        return
    from ..connection import mask_url

    c = report.connection
    if not report.changed:
        out.success(f"stack {project.name} is already up; nothing changed")
    else:
        out.success(f"stack {project.name} is up" + (f", ready in {ready_after:.1f}s" if ready_after else ""))
        _changes(out, report)
    out.info(f"  broker   {mask_url(c.broker_url())}")
    out.info(f"  backend  {mask_url(c.backend_url())}")
    out.info(f"  secrets  {state_file(project)}")


def _options(
    bind: str | None = None,
    broker_port: int | None = None,
    backend_port: int | None = None,
    broker_image: str | None = None,
    backend_image: str | None = None,
    python_image: str | None = None,
    **rest: object,
) -> UpOptions:
    """Options as given, each falling back to env, the user's config, then the default."""
    from ..settings import bind_setting, port_setting, setting
    from ..stack import UpOptions

    return UpOptions(
        bind=bind_setting(bind),
        broker_port=port_setting("TCEL_BROKER_PORT", broker_port),
        backend_port=port_setting("TCEL_BACKEND_PORT", backend_port),
        broker_image=setting("TCEL_BROKER_IMAGE", broker_image),
        backend_image=setting("TCEL_BACKEND_IMAGE", backend_image),
        python_image=setting("TCEL_PYTHON_IMAGE", python_image),
        **rest,
    )


def _changes(out: Output, report: UpReport) -> None:
    for verb, names in (("created", report.created), ("started", report.started), ("removed", report.removed)):
        if names:
            out.info(f"  {verb:<8} {', '.join(names)}")


def _up_json(name: str, report: UpReport, ready_after: float | None, credentials: str) -> dict:
    return {
        "project": name,
        "changed": report.changed,
        "built": report.built,
        "created": report.created,
        "started": report.started,
        "removed": report.removed,
        "ready": ready_after is not None,
        "ready_seconds": round(ready_after, 2) if ready_after is not None else None,
        **_endpoints(report.connection),
        "credentials_file": credentials,
    }


def _endpoints(c: Connection) -> dict:
    from ..connection import mask

    return {
        "broker": {
            "host": c.host,
            "port": c.broker_port,
            "user": c.broker_user,
            "password": mask(c.broker_password),
        },
        "backend": {"host": c.host, "port": c.backend_port, "password": mask(c.backend_password)},
    }


def down(
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the broker's and backend's data.")] = False,
    json: Json = False,
) -> None:
    """Stop and remove the stack; data volumes are kept unless --volumes."""
    from ..settings import resolve_project
    from ..stack import Stack

    out = Output(json)
    project = resolve_project(project_dir, project_name)
    with out.status(f"stopping stack {project.name}"):
        report = Stack(project).down(volumes=volumes)
    if json:
        out.data({"project": project.name, **vars(report)})
    elif not (report.containers or report.networks or report.volumes):
        out.success(f"nothing to remove for stack {project.name}")
    else:
        removed = [f"{len(report.containers)} container(s)", f"{len(report.networks)} network(s)"]
        if volumes:
            removed.append(f"{len(report.volumes)} volume(s)")
        out.success(f"stack {project.name} is down: removed {', '.join(removed)}")


def logs(
    service: Annotated[
        Optional[str], typer.Argument(help="broker, backend, worker (all workers) or worker-N; default: all.")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[Optional[int], typer.Option(min=0, help="Only the last N lines of each container.")] = None,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line: service and line.")] = False,
) -> None:
    """Show the containers' logs, interleaved and prefixed with their service, as compose does."""
    from ..settings import resolve_project
    from ..stack import Stack

    out = Output(json)
    try:
        for source, text in Stack(resolve_project(project_dir, project_name)).logs(service, follow, tail):
            if json:
                out.json_line({"service": source, "line": text})
            else:
                out.log_line(source, text)
    except KeyboardInterrupt:
        pass


def scale(
    workers: Annotated[int, typer.Argument(min=1, max=32, help="How many worker containers to run.")],
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for new workers to answer.")] = 120,
    project_dir: ProjectDir = None,
    project_name: ProjectName = None,
    json: Json = False,
) -> None:
    """Add or remove worker containers; the broker and backend are left alone."""
    from ..connection import state_file
    from ..settings import resolve_project
    from ..stack import Stack

    out = Output(json)
    project = resolve_project(project_dir, project_name)
    options = _options(workers=workers, workers_only=True)
    stack = Stack(project)
    with out.status(f"scaling stack {project.name} to {workers} worker(s)") as progress:
        report = stack.up(options, progress)
        ready_after = stack.wait_ready(report.connection, timeout, progress)
    if json:
        out.data(_up_json(project.name, report, ready_after, str(state_file(project))))
        return
    out.success(f"stack {project.name} runs {workers} worker(s), all answering")
    _changes(out, report)


def register(app: typer.Typer) -> None:
    for command in (up, down, logs, scale):
        app.command()(command)
