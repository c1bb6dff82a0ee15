"""Reading containers' logs: interleaved by time, or followed as they come, as compose does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import engine

if TYPE_CHECKING:
    from docker.models.containers import Container


def matches(container: Container, service: str | None) -> bool:
    """`worker` means every worker; `worker-2`, `broker` or a full container name mean that one (a worker that
    `up --watch` started has the image in its host name, `worker-2-3f2a9c`: `worker-2` still names it)."""
    if service is None:
        return True
    slot = f"{engine.service_of(container)}-{engine.number_of(container)}"
    return service in (engine.service_of(container), engine.hostname_of(container), container.name, slot)


def interleaved(containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
    """(host name, line) pairs of every container's log so far, in time order."""
    lines = []
    with engine.engine_errors():
        for c in containers:
            raw = c.logs(timestamps=True, tail=tail if tail is not None else "all").decode(errors="replace")
            for entry in raw.splitlines():
                stamp, _, text = entry.partition(" ")
                lines.append((sortable(stamp), engine.hostname_of(c), text))
    for _, name, text in sorted(lines, key=lambda line: line[0]):
        yield name, text


def followed(containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
    """(host name, line) pairs as the containers write them, one reading thread per container."""
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
                    lines.put((engine.hostname_of(container), line.decode(errors="replace")))
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


def sortable(stamp: str) -> str:
    """Docker's RFC 3339 times drop trailing zeros of the fraction; pad it so that text order is time order."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<9}"
