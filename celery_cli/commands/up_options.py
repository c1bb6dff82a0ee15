"""The options of `tcel up` and `tcel scale` made whole: each as given, else the environment, else what the
project's stack was last started with, else the user's config, else the default."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..endpoints import Target
    from ..stack.base import UpOptions


Autoscale = Annotated[
    str | None,
    typer.Option(
        "--autoscale",
        metavar="MIN:MAX",
        help="Run an autoscaler in the stack, keeping MIN..MAX workers by the backlog [default: as last started].",
    ),
]
NoAutoscale = Annotated[bool, typer.Option("--no-autoscale", help="Remove the stack's autoscaler.")]
AutoscaleThreshold = Annotated[
    float | None,
    typer.Option(min=0.1, help="With --autoscale: ready messages per worker above which workers are added [5]."),
]
AutoscaleCooldown = Annotated[
    float | None,
    typer.Option(min=0, help="With --autoscale: seconds of empty queues and idle workers before one goes [30]."),
]
DEFAULT_THRESHOLD = 5.0
DEFAULT_COOLDOWN = 30.0


def autoscale_option(
    bounds: str | None, threshold: float | None, cooldown: float | None, off: bool = False
) -> str | None:
    """The autoscaler's policy as given (MIN:MAX:THRESHOLD:COOLDOWN), "" for off, None when not given."""
    from ..autoscale_policy import Policy, parse_bounds
    from ..errors import UsageError

    if off:
        if bounds is not None:
            raise UsageError("--autoscale and --no-autoscale contradict each other")
        return ""
    if bounds is None:
        if threshold is not None or cooldown is not None:
            raise UsageError("--autoscale-threshold and --autoscale-cooldown need --autoscale MIN:MAX")
        return None
    try:
        minimum, maximum = parse_bounds(bounds)
    except ValueError as exc:
        raise UsageError(str(exc), hint="such as --autoscale 1:4") from None
    given = (threshold or DEFAULT_THRESHOLD, DEFAULT_COOLDOWN if cooldown is None else cooldown)
    return Policy(minimum, maximum, *given).label


def queues_option(option: str | None) -> tuple[str, ...] | None:
    from ..task_args import parse_queues

    return parse_queues(option) if option is not None else None


def broker_option(given: str | None, started_with: dict[str, str]) -> str:
    """The broker as given, else TCEL_BROKER, else as the stack was last started, else RabbitMQ."""
    from ..broker_kind import KINDS, RABBITMQ
    from ..errors import UsageError

    broker = (given or os.environ.get("TCEL_BROKER") or started_with.get("TCEL_BROKER") or RABBITMQ).lower()
    if broker not in KINDS:
        raise UsageError(f"unknown broker {broker!r}", hint="--broker takes rabbitmq or redis")
    return broker


def redis_refusals(options: UpOptions, swarm: bool) -> None:
    """Refuse, with one line (exit 2), what tcel does not yet run beside a Redis broker."""
    from ..broker_kind import REDIS
    from ..credentials import LOOPBACK
    from ..errors import UsageError

    if options.broker != REDIS:
        return
    asked = {
        "--swarm": swarm,
        # a stack published beyond loopback serves TLS (docs/security.md), which a Redis broker does not yet
        f"--bind {options.bind}": options.bind not in LOOPBACK,
        "--flower": options.flower,
        "--metrics": options.metrics,
        "--beat": options.beat,
        "--autoscale": bool(options.autoscale),
    }
    refused = [option for option, on in asked.items() if on]
    if refused:
        raise UsageError(
            f"{', '.join(refused)} works with a RabbitMQ broker only so far; this stack's broker is Redis",
            hint="leave it out, or use --broker rabbitmq (see docs/redis-broker.md)",
        )


def up_options(
    target: Target,
    bind: str | None = None,
    broker_port: int | None = None,
    backend_port: int | None = None,
    broker_image: str | None = None,
    backend_image: str | None = None,
    python_image: str | None = None,
    flower_port: int | None = None,
    metrics_port: int | None = None,
    **rest: Any,  # the rest of UpOptions' fields, as given
) -> UpOptions:
    """Options as given, each falling back to env, then what the project's stack was last started with (so
    `scale` or a later `up` runs it the same way), the user's config, then the default."""
    import shlex

    from ..credentials import kept
    from ..project_app import find_app
    from ..settings import bind_setting, is_set, port_setting, setting
    from ..stack.base import UpOptions

    started_with = kept(target.project)

    def asked(key: str, option: int | None) -> int | None:
        return port_setting(key, option) if is_set(key, option) else None

    def image(key: str, option: str | None) -> str:
        return (
            setting(key, option)
            if option is not None or key in os.environ or key not in started_with
            else started_with[key]
        )

    concurrency = rest.pop("concurrency", None) or int(started_with.get("TCEL_CONCURRENCY") or 0) or None
    given = rest.pop("worker_command", None)  # '' given: back to tcel's own command
    command = str(given if given is not None else started_with.get("TCEL_WORKER_COMMAND") or "")
    app_option = rest.pop("app", None)
    rest["worker_command"] = tuple(shlex.split(command)) or None
    directory = target.project.directory
    rest["app"] = find_app(directory, str(app_option) if app_option else None, started_with.get("TCEL_APP"))
    rest["registry"] = rest.get("registry") or started_with.get("TCEL_REGISTRY") or None
    for limit in ("max_tasks_per_child", "max_memory_per_child"):  # 0 given: no limit from now on
        given_limit = rest.get(limit)
        kept_limit = started_with.get(f"TCEL_{limit.upper()}") or ""
        rest[limit] = (given_limit if given_limit is not None else int(kept_limit or 0)) or None
    autoscale = rest.pop("autoscale", None)  # None: as last started; "": none
    rest["autoscale"] = autoscale if autoscale is not None else started_with.get("TCEL_AUTOSCALE", "")
    beat = rest.pop("beat", None)
    rest["beat"] = beat if beat is not None else started_with.get("TCEL_BEAT") == "1"
    rest["broker"] = broker_option(rest.pop("broker", None), started_with)

    return UpOptions(
        bind=bind_setting(bind),
        broker_port=asked("TCEL_BROKER_PORT", broker_port),
        backend_port=asked("TCEL_BACKEND_PORT", backend_port),
        flower_port=asked("TCEL_FLOWER_PORT", flower_port),
        metrics_port=asked("TCEL_METRICS_PORT", metrics_port),
        broker_image=image("TCEL_BROKER_IMAGE", broker_image),
        backend_image=image("TCEL_BACKEND_IMAGE", backend_image),
        python_image=image("TCEL_PYTHON_IMAGE", python_image),
        registry_image=setting("TCEL_REGISTRY_IMAGE"),
        concurrency=concurrency,
        **rest,
    )
