"""`tcel up`, `tcel down`, `tcel scale`, `tcel logs`: the stack's lifecycle."""

from __future__ import annotations

from typing import Annotated

import typer

from ..endpoints import Target
from ..output import Output
from .completion import services
from .options import Json, MaxMemoryPerChild, MaxTasksPerChild, Queues, ReadyTimeout, which_stack
from .up_options import (
    Autoscale,
    AutoscaleCooldown,
    AutoscaleThreshold,
    NoAutoscale,
    autoscale_option,
    queues_option,
    redis_refusals,
    up_options,
)
from .up_report import show

# The services are imported inside the commands, so that `tcel --help` loads none of them.


@which_stack()
def up(
    target: Target,
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Worker containers (default: as many as run, else 1).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=256, help="Processes per worker (default: the image's, 10).")
    ] = None,
    queues: Queues = None,
    max_tasks_per_child: MaxTasksPerChild = None,
    max_memory_per_child: MaxMemoryPerChild = None,
    build: Annotated[bool, typer.Option("--build", help="Rebuild the worker image and replace older workers.")] = False,
    pull: Annotated[
        bool,
        typer.Option(
            "--pull",
            help="First pull the broker, backend and Python base images again (on Swarm the registry's too), then "
            "rebuild tcel's images on the fresh base; a failed pull stops 'up' before anything changes.",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until every service answers.")] = True,
    ready_timeout: ReadyTimeout = 120,
    bind: Annotated[
        str | None, typer.Option(help="Address to publish ports on [env TCEL_BIND; default 127.0.0.1].")
    ] = None,
    broker_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Host port for RabbitMQ [env TCEL_BROKER_PORT; 5672].")
    ] = None,
    backend_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Host port for Redis [env TCEL_BACKEND_PORT; 6379].")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            metavar="rabbitmq|redis",
            help="The broker: RabbitMQ, or Redis in its own container (docs/redis-broker.md) "
            "[env TCEL_BROKER; default: as last started, else rabbitmq].",
        ),
    ] = None,
    broker_image: Annotated[
        str | None, typer.Option(help="RabbitMQ image [env TCEL_BROKER_IMAGE; rabbitmq:4].")
    ] = None,
    backend_image: Annotated[str | None, typer.Option(help="Redis image [env TCEL_BACKEND_IMAGE; redis:7].")] = None,
    python_image: Annotated[
        str | None, typer.Option(help="Base of the worker image [env TCEL_PYTHON_IMAGE; python:3.12-slim].")
    ] = None,
    flower: Annotated[
        bool,
        typer.Option(
            "--flower", help="Also run Flower, the web monitor, behind a generated login (see 'tcel flower')."
        ),
    ] = False,
    flower_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Host port for Flower [env TCEL_FLOWER_PORT; 5555].")
    ] = None,
    metrics: Annotated[
        bool,
        typer.Option("--metrics", help="Also run a Prometheus exporter behind a generated login (see 'tcel metrics')."),
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Host port for the exporter [env TCEL_METRICS_PORT; 9808].")
    ] = None,
    beat: Annotated[
        bool | None,
        typer.Option(
            "--beat/--no-beat",
            help="Also run one beat (RedBeat: its schedule and lock in the stack's Redis) sending the app's "
            "periodic tasks (see 'tcel beat'); --no-beat removes it [default: as last started].",
        ),
    ] = None,
    autoscale: Autoscale = None,
    no_autoscale: NoAutoscale = False,
    autoscale_threshold: AutoscaleThreshold = None,
    autoscale_cooldown: AutoscaleCooldown = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then stay in the foreground: a change to the worker's files reloads them.")
    ] = False,
    grace: Annotated[
        float, typer.Option(min=0, help="With --watch: seconds a replaced worker may finish its running tasks.")
    ] = 10,
    swarm: Annotated[
        bool | None,
        typer.Option(
            "--swarm/--containers",
            help="Run as Docker Swarm services across the swarm's nodes, or as "
            "plain containers [env TCEL_ENGINE; default: as last started, else containers].",
        ),
    ] = None,
    init: Annotated[
        bool, typer.Option("--init", help="With --swarm: make this engine a single-node swarm if it is in none.")
    ] = False,
    data_node: Annotated[
        str | None,
        typer.Option(
            help="With --swarm: the node the broker and backend (and their data) run on "
            "[default: as last started, else this manager]."
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="With --swarm: push the worker image there, for every "
            "node to pull [default: a registry service tcel runs].",
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option(
            help="The Celery app the workers run, as 'celery -A' takes it [env TCEL_APP; default: as last "
            "started, else the one the directory defines, else tcel's template]."
        ),
    ] = None,
    worker_command: Annotated[
        str | None,
        typer.Option(
            help="The command that starts a worker in the image [default: tcel's, "
            "'celery -A tcel_worker worker ...', which runs the app with tcel's hooks and safe settings; "
            "kept for the project until given again; '' goes back to tcel's]."
        ),
    ] = None,
    json: Json = False,
) -> None:
    """Start the stack (RabbitMQ, Redis, workers) and wait until it works.

    The workers run the project's Celery app, found in its files as 'celery -A' finds one (or --app), in an
    image built from its Dockerfile, or from one tcel writes; tcel's template where the directory has no app.
    Creates only what is missing and starts only what is stopped, so running it again is safe.
    Credentials are generated on the first run and kept in ~/.local/state/tcel/<project>.env (owner-only).
    With --watch, every change to a file of the worker image (the app's modules, requirements, the Dockerfile...)
    rebuilds it and replaces the workers one at a time; Ctrl-C stops watching and leaves the stack up.
    With --flower, Flower runs beside them (its image built on the same Python base); a later 'tcel up'
    without --flower leaves it running, 'tcel down' removes it; --metrics likewise runs tcel's Prometheus
    exporter (queues, workers, recent tasks). With --beat, one beat runs from the workers'
    image, replaced with them, and later 'tcel up's keep it (until --no-beat); its schedule's state lives in
    Redis, kept unless 'down --volumes'. With --autoscale MIN:MAX, a small service of the stack adds workers
    while the backlog per worker stays above --autoscale-threshold and removes idle ones (warm shutdown) after
    --autoscale-cooldown; later 'tcel up's keep it (until --no-autoscale).
    """
    from ..stack import open_stack

    out = Output(json)
    options = up_options(
        target,
        bind,
        broker_port,
        backend_port,
        broker_image,
        backend_image,
        python_image,
        workers=workers,
        concurrency=concurrency,
        build=build,
        pull=pull,
        queues=queues_option(queues),
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child=max_memory_per_child,
        flower=flower,
        flower_port=flower_port,
        metrics=metrics,
        metrics_port=metrics_port,
        beat=beat,
        autoscale=autoscale_option(autoscale, autoscale_threshold, autoscale_cooldown, no_autoscale),
        swarm_init=init,
        data_node=data_node,
        registry=registry,
        app=app,
        worker_command=worker_command,
        broker=broker,
    )
    stack = open_stack(target.project, {True: "swarm", False: "containers", None: None}[swarm])
    redis_refusals(options, stack.engine == "swarm")
    with out.status(f"bringing up stack {target.project.name}") as progress:
        report = stack.start(options, ready_timeout if wait else None, progress)
    name = target.project.name
    if not report.changed:
        headline = f"stack {name} is already up; nothing changed"
    else:
        headline = f"stack {name} is up" + (f", ready in {report.ready_after:.1f}s" if report.ready_after else "")
    show(out, target, report, headline, endpoints=True, options=options)
    if watch:
        from .up_watch import watch_and_reload

        watch_and_reload(out, stack, options, grace, ready_timeout)


@which_stack()
def scale(
    target: Target,
    workers: Annotated[int, typer.Argument(min=1, max=32, help="How many worker containers to run.")],
    queues: Queues = None,
    max_tasks_per_child: MaxTasksPerChild = None,
    max_memory_per_child: MaxMemoryPerChild = None,
    ready_timeout: ReadyTimeout = 120,
    json: Json = False,
) -> None:
    """Add or remove worker containers; the broker and backend are left alone.

    With --queues, --max-tasks-per-child or --max-memory-per-child, every worker is (re)started with them.
    """
    from ..stack import open_stack

    out = Output(json)
    stack = open_stack(target.project)
    with out.status(f"scaling stack {target.project.name} to {workers} worker(s)") as progress:
        options = up_options(
            target,
            queues=queues_option(queues),
            max_tasks_per_child=max_tasks_per_child,
            max_memory_per_child=max_memory_per_child,
        )
        report = stack.scale(workers, options, ready_timeout, progress)
    show(out, target, report, f"stack {target.project.name} runs {workers} worker(s), all answering")


@which_stack()
def down(
    target: Target,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the broker's and backend's data.")] = False,
    json: Json = False,
) -> None:
    """Stop and remove the stack; data volumes are kept unless --volumes."""
    from ..stack import open_stack

    out = Output(json)
    name = target.project.name
    with out.status(f"stopping stack {name}"):
        report = open_stack(target.project).down(volumes=volumes)
    if json:
        out.data({"project": name, **report.as_dict()})
    elif not (report.containers or report.services or report.networks or report.volumes):
        out.success(f"nothing to remove for stack {name}")
    else:
        units = f"{len(report.services)} service(s)" if report.services else f"{len(report.containers)} container(s)"
        removed = [units, f"{len(report.networks)} network(s)"]
        if volumes:
            removed.append(f"{len(report.volumes)} volume(s)")
        if report.configs:
            removed.append(f"{len(report.configs)} config(s) (the state file's copy)")
        out.success(f"stack {name} is down: removed {', '.join(removed)}")


@which_stack()
def logs(
    target: Target,
    service: Annotated[
        str | None,
        typer.Argument(
            help="broker, backend, worker (all workers), worker-N, beat, flower, metrics or autoscaler; default: all.",
            autocompletion=services,
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last N lines of each container.")] = None,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line: service and line.")] = False,
) -> None:
    """Show the containers' logs, interleaved and prefixed with their service, as compose does."""
    from ..stack import open_stack

    out = Output(json)
    try:
        for source, text in open_stack(target.project).logs(service, follow, tail):
            if json:
                out.json_line({"service": source, "line": text})
            else:
                out.log_line(source, text)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    for command in (up, down, logs, scale):
        app.command()(command)
