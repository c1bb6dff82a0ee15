"""Reading the plain-container stack's logs: every container's so far in time order, or followed as they come."""

from __future__ import annotations

from collections.abc import Iterator

from ..docker_client import engine_errors
from ..log_merge import in_time_order, merged
from .docker_api import Container


def matches(container: Container, service: str | None) -> bool:
    """`worker` means every worker; `worker-2`, `broker` or a full container name mean that one (a worker that
    `up --watch` started has the image in its host name, `worker-2-3f2a9c`: `worker-2` still names it)."""
    if service is None:
        return True
    slot = f"{container.service}-{container.number}"
    return service in (container.service, container.hostname, container.name, slot)


def interleaved(containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
    """(host name, line) pairs of every container's log so far, in time order."""
    lines = []
    with engine_errors():
        for c in containers:
            for entry in c.log_text(tail=tail if tail is not None else "all", timestamps=True).splitlines():
                stamp, _, text = entry.partition(" ")
                lines.append((stamp, c.hostname, text))
    return in_time_order(lines)


def followed(containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
    """(host name, line) pairs as the containers write them, one reading thread per container."""
    return merged([_lines_of(c, tail) for c in containers])


def _lines_of(container: Container, tail: int | None) -> Iterator[tuple[str, str]]:
    pending = b""
    for chunk in container.log_stream(tail=tail if tail is not None else "all"):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield container.hostname, line.decode(errors="replace")
