"""Failed tasks, read from the failure index the workers' hooks keep (one sorted set of small JSON entries by
time, names.FAILED_KEY): filtered by task name, exception, worker and age, grouped by exception, and chosen
for `tcel retry --state FAILURE`."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .names import FAILED_KEY
from .result_store import ResultStore
from .task_record import iso_time

EXAMPLES = 3
AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)\Z")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since(text: str | None, option: str = "--since") -> float | None:
    """The moment `text` (30s, 15m, 1h, 2d, 1w; bare seconds) before now, as seconds since the epoch."""
    if text is None:
        return None
    match = AGE.match(text.strip().lower())
    if not match:
        raise UsageError(f"{option} {text!r} is not an age", hint="give one such as 30s, 15m, 1h, 2d or 1w")
    return time.time() - float(match.group(1)) * UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Filters:
    """Which tasks a command is about; an unset filter lets everything through."""

    name: str | None = None
    exception: str | None = None
    worker: str | None = None
    since: float | None = None

    def admits(self, name: str | None, worker: str | None, at: float | None, exception: str | None = None) -> bool:
        return (
            (self.name is None or name == self.name)
            and (self.worker is None or self.worker in (worker or ""))
            and (self.since is None or (at is not None and at >= self.since))
            and (self.exception is None or exception == self.exception)
        )


@dataclass(slots=True)
class Failure:
    id: str
    name: str | None
    exception: str
    message: str
    worker: str | None
    at: float
    entry: str = field(repr=False, default="")  # the index's member, to remove it once retried


def failures(store: ResultStore, filters: Filters) -> list[Failure]:
    """Failures the index keeps that pass `filters`, newest first. Each entry carries its time, so the index is
    read without its scores (which cost redis-py a float per entry: about three times the read)."""
    with store.errors():
        entries: list[str] = store.client.zrevrangebyscore(  # type: ignore[assignment]
            FAILED_KEY, "+inf", filters.since if filters.since is not None else "-inf"
        )
    decode = json.JSONDecoder().decode
    found = []
    everything = filters == Filters()
    for entry in entries:
        data = decode(entry)
        failure = Failure(
            data.get("id") or "",
            data.get("name"),
            data.get("exc") or "Exception",
            data.get("msg") or "",
            data.get("worker"),
            float(data.get("at") or 0),
            entry,
        )
        if everything or filters.admits(failure.name, failure.worker, failure.at, failure.exception):
            found.append(failure)
    return found


def by_exception(found: list[Failure]) -> list[dict[str, Any]]:
    """Failures grouped by exception and message, most frequent first: count, first and last seen, the newest
    ids as examples."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for failure in found:  # newest first
        group = groups.get((failure.exception, failure.message))
        if group is None:
            group = groups[(failure.exception, failure.message)] = {
                "exception": failure.exception,
                "message": failure.message,
                "count": 0,
                "tasks": set(),
                "first_seen": failure.at,
                "last_seen": failure.at,
                "examples": [],
            }
        group["count"] += 1
        group["first_seen"] = failure.at
        if failure.name:
            group["tasks"].add(failure.name)
        if len(group["examples"]) < EXAMPLES:
            group["examples"].append(failure.id)
    rows = sorted(groups.values(), key=lambda g: (-g["count"], -g["last_seen"]))
    for row in rows:
        row["tasks"] = sorted(row["tasks"])
        row["first_seen"], row["last_seen"] = iso_time(row["first_seen"]), iso_time(row["last_seen"])
    return rows


def claim(store: ResultStore, chosen: list[Failure]) -> list[Failure]:
    """Take the failures out of the index before they are sent again, and keep those this call took: of two bulk
    retries at once, each failure is sent by one (ZREM answers 1 to one of them only)."""
    taken: list[Failure] = []
    with store.errors():
        for start in range(0, len(chosen), 1000):
            batch = chosen[start : start + 1000]
            pipe = store.client.pipeline(transaction=False)
            for failure in batch:
                pipe.zrem(FAILED_KEY, failure.entry)
            taken += [failure for failure, removed in zip(batch, pipe.execute(), strict=True) if removed]
    return taken


def give_back(store: ResultStore, unsent: list[Failure]) -> None:
    """Put claimed failures that were not sent again back into the index, where they were."""
    if not unsent:
        return
    with store.errors():
        for start in range(0, len(unsent), 1000):
            store.client.zadd(FAILED_KEY, {f.entry: f.at for f in unsent[start : start + 1000]})
