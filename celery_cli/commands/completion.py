"""Shell completion of values: task names for `call`, services for `logs`. Both read the stack's task registry
cache only (a small file), never the workers or the Docker engine, so a completion costs no more than
starting tcel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..endpoints import Target
from ..errors import TcelError

if TYPE_CHECKING:
    from ..task_registry import Registry


def task_names(ctx: typer.Context, incomplete: str) -> list[str]:
    registry = _registry(ctx)
    names = registry.tasks if registry else []
    return [name for name in names if name.startswith(incomplete) and not name.startswith("celery.")]


def services(ctx: typer.Context, incomplete: str) -> list[str]:
    return [
        name
        for name in ["broker", "backend", "worker", "beat", "flower", "metrics", "autoscaler", *_workers(ctx)]
        if name.startswith(incomplete)
    ]


def workers(ctx: typer.Context, incomplete: str) -> list[str]:
    return [name for name in _workers(ctx) if name.startswith(incomplete)]


def _workers(ctx: typer.Context) -> list[str]:
    """Host names of the workers that answered last (worker-1, ...)."""
    registry = _registry(ctx)
    return [node.partition("@")[2] for node in registry.workers] if registry else []


def _registry(ctx: typer.Context) -> Registry | None:
    from ..task_registry import cached

    params = ctx.params  # as typed so far: completion does not convert them
    directory = params.get("project_dir")
    target = Target(Path(directory) if directory else None, params.get("project_name"), params.get("broker_url"))
    try:
        return cached(target.url("broker"), max_age=None)
    except (TcelError, OSError):
        return None
