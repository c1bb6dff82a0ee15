"""Reading logs: interleaved by time, or followed as they come, as compose does (for containers here; swarm.py
reads services' logs and uses the same merging)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
                lines.append((stamp, engine.hostname_of(c), text))
    return in_time_order(lines)


def followed(containers: list[Container], tail: int | None) -> Iterator[tuple[str, str]]:
    """(host name, line) pairs as the containers write them, one reading thread per container."""
    return merged([_lines_of(c, tail) for c in containers])


def _lines_of(container: Container, tail: int | None) -> Iterator[tuple[str, str]]:
    pending = b""
    for chunk in container.logs(stream=True, follow=True, tail=tail if tail is not None else "all"):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield engine.hostname_of(container), line.decode(errors="replace")


def in_time_order(lines: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, str]]:
    """(source, text) of (time stamp, source, text) lines from several logs, sorted by their stamps."""
    return iter([(source, text) for _, source, text in sorted(lines, key=lambda line: sortable(line[0]))])


def merged(streams: list[Iterator[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
    """The items of several blocking streams as they come, one reading thread each, until all have ended; a
    stream's error (the engine gone, a refused request) is raised here, as one line, not in its thread."""
    import queue
    import threading

    items: queue.Queue[tuple[str, str] | BaseException | None] = queue.Queue()

    def pump(stream: Iterator[tuple[str, str]]) -> None:
        import docker

        try:
            for item in stream:
                items.put(item)
        except docker.errors.NotFound:
            pass  # removed between listing and reading (a `down`, a reload): its stream has ended, the others go on
        except Exception as exc:
            items.put(exc)
        finally:
            items.put(None)

    for stream in streams:
        threading.Thread(target=pump, args=(stream,), daemon=True).start()
    running = len(streams)
    while running:
        item = items.get()
        if item is None:
            running -= 1
        elif isinstance(item, BaseException):
            with engine.engine_errors(streaming=True):
                raise item
        else:
            yield item


def sortable(stamp: str) -> str:
    """Docker's RFC 3339 times drop trailing zeros of the fraction; pad it so that text order is time order."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<9}"
