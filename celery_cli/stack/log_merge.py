"""Merging the logs of several sources, as compose does: interleaved by time, or followed as they come. Each
engine's logs.py reads its own sources (containers, services) and merges them here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .docker_client import engine_errors


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
            with engine_errors(streaming=True):
                raise item
        else:
            yield item


def sortable(stamp: str) -> str:
    """Docker's RFC 3339 times drop trailing zeros of the fraction; pad it so that text order is time order."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction:0<9}"
