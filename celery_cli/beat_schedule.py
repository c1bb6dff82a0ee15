"""The beat's schedule as RedBeat keeps it in the stack's Redis, read without the project's code: each entry's
definition and last run, its next run, the beat's heartbeat (tcel_beat.py); and pausing or resuming an entry.

RedBeat's keys (redbeat/schedulers.py, 2.4): the sorted set `redbeat::schedule` of entry keys by next run
(whole seconds since the epoch), a hash `redbeat:<name>` per entry with `definition` (name, task, args, kwargs,
options, schedule, enabled) and `meta` (last_run_at, total_run_count) as JSON, and the lock `redbeat::lock`
the running beat holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .errors import NotFound
from .names import QUEUE
from .result_store import ResultStore
from .schedule_words import in_words

if TYPE_CHECKING:
    from .task_call import TaskCall

ENTRY_PREFIX = "redbeat:"
SCHEDULE_KEY = "redbeat::schedule"
LOCK_KEY = "redbeat::lock"
# what tcel_beat.py keeps beside RedBeat's keys
STATE_KEY = "tcel:beat"
PAUSED_KEY = "tcel:beat:paused"


@dataclass
class BeatEntry:
    """One entry of the schedule."""

    name: str
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)  # as RedBeat encodes it
    enabled: bool = True
    last_run: float | None = None  # seconds since the epoch
    next_run: float | None = None
    total_runs: int = 0

    def every(self, zone: str | None) -> str:
        return in_words(self.schedule, zone)

    def as_dict(self, zone: str | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "queue": self.options.get("queue"),
            "schedule": self.every(zone),
            "schedule_definition": self.schedule,
            "enabled": self.enabled,
            "last_run": self.last_run,
            "next_run": self.next_run if self.enabled else None,
            "total_runs": self.total_runs,
        }


@dataclass
class BeatState:
    """The schedule and the beat that runs it."""

    entries: list[BeatEntry]
    locked: bool  # a beat holds RedBeat's lock
    last_tick: float | None
    host: str | None
    timezone: str | None

    @property
    def next_due(self) -> BeatEntry | None:
        due = [e for e in self.entries if e.enabled and e.next_run is not None]
        return min(due, key=lambda e: e.next_run or 0) if due else None

    def as_dict(self) -> dict[str, Any]:
        due = self.next_due
        return {
            "running": self.locked,
            "last_tick": self.last_tick,
            "host": self.host,
            "timezone": self.timezone,
            "next_due": {"name": due.name, "at": due.next_run} if due else None,
            "entries": [e.as_dict(self.timezone) for e in self.entries],
        }


def read(store: ResultStore) -> BeatState:
    """The whole schedule in two round trips, ordered by next run."""
    with store.errors():
        pipe = store.client.pipeline(transaction=False)
        pipe.zrange(SCHEDULE_KEY, 0, -1, withscores=True)
        pipe.hgetall(STATE_KEY)
        pipe.exists(LOCK_KEY)
        scheduled, state, locked = pipe.execute()
        pipe = store.client.pipeline(transaction=False)
        for key, _ in scheduled:
            pipe.hmget(key, ["definition", "meta"])
        stored = pipe.execute()
    entries = [
        entry(definition, meta, score)
        for (_, score), (definition, meta) in zip(scheduled, stored, strict=True)
        if definition
    ]
    return BeatState(
        entries=entries,
        locked=bool(locked),
        last_tick=float(state["tick"]) if state.get("tick") else None,
        host=state.get("host"),
        timezone=state.get("timezone"),
    )


def entry(definition: str, meta: str | None, score: float) -> BeatEntry:
    """One entry from RedBeat's JSON. The next run is RedBeat's score, which it truncates to whole seconds from
    a time computed a little early: so the last run plus the interval for an interval schedule, the nearest
    minute for a crontab (whose runs fall on whole minutes); None when nothing is due again."""
    data = json.loads(definition)
    state = json.loads(meta) if meta else {}
    last_run = moment(state.get("last_run_at"))
    schedule = data.get("schedule") or {}
    next_run: float | None = score if score >= 0 else None
    if schedule.get("__type__") == "interval" and last_run is not None and next_run is not None:
        next_run = last_run + float(schedule.get("every") or 0)  # in the past while the beat is down
    elif schedule.get("__type__") == "crontab" and next_run is not None:
        next_run = round(next_run / 60) * 60.0
    runs = int(state.get("total_run_count") or 0)
    return BeatEntry(
        name=str(data.get("name")),
        task=str(data.get("task")),
        args=list(data.get("args") or []),
        kwargs=dict(data.get("kwargs") or {}),
        options=dict(data.get("options") or {}),
        schedule=schedule,
        enabled=bool(data.get("enabled", True)),
        last_run=last_run if runs else None,  # RedBeat stores a new entry with the time it first saw it
        next_run=next_run,
        total_runs=runs,
    )


def moment(encoded: Any) -> float | None:
    """Seconds since the epoch of a datetime as RedBeat's encoder writes it (a zone name, or seconds east)."""
    if not isinstance(encoded, dict) or encoded.get("__type__") != "datetime":
        return None
    zone = encoded.get("timezone", "UTC")
    if isinstance(zone, (int, float)):
        tz: Any = timezone(timedelta(seconds=zone))
    elif zone == "UTC":
        tz = UTC
    else:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(str(zone))
    parts = {k: int(encoded[k]) for k in ("year", "month", "day", "hour", "minute", "second", "microsecond")}
    return datetime(**parts, tzinfo=tz).timestamp()


def find(store: ResultStore, name: str) -> BeatEntry:
    """The entry called `name`; NotFound (exit 10) naming the entries there are."""
    with store.errors():
        definition, meta = store.client.hmget(ENTRY_PREFIX + name, ["definition", "meta"])
        if not definition:
            names = sorted(str(key).removeprefix(ENTRY_PREFIX) for key in store.client.zrange(SCHEDULE_KEY, 0, 19))
            known = f"; entries: {', '.join(names)}" if names else "; the schedule is empty (is the beat up?)"
            raise NotFound(f"no beat entry {name!r}{known}", hint="see 'tcel beat'")
    return entry(str(definition), str(meta) if meta else None, -1)


def set_enabled(store: ResultStore, name: str, enabled: bool) -> bool:
    """Pause or resume an entry (RedBeat's `enabled`), and remember it for a restarted beat (tcel_beat.py);
    whether it changed. A resumed entry whose run fell due while paused runs at the beat's next tick."""
    find(store, name)
    key = ENTRY_PREFIX + name

    def change(pipe: Any) -> bool:
        data = json.loads(pipe.hget(key, "definition") or "{}")
        changed = bool(data.get("enabled", True)) != enabled
        data["enabled"] = enabled
        pipe.multi()
        pipe.hset(key, "definition", json.dumps(data))
        if enabled:
            pipe.srem(PAUSED_KEY, name)
        else:
            pipe.sadd(PAUSED_KEY, name)
        return changed

    # redis-py runs it again when the entry changed meanwhile (a starting beat rewrites every definition)
    with store.errors():
        return bool(store.client.transaction(change, key, value_from_callable=True))  # type: ignore[arg-type]


def ticking(store: ResultStore, since: float) -> bool:
    """Whether a beat ticks: its last tick is at most its longest sleep (beat_max_loop_interval) and a second
    older than `since`, or newer. A beat that crashes, or waits for another's lock, does not tick."""
    with store.errors():
        tick, longest = store.client.hmget(STATE_KEY, ["tick", "max_interval"])
    return tick is not None and float(tick) >= since - float(longest or 0) - 1.0


def tick_age(state: BeatState, now: float | None = None) -> float | None:
    """Seconds since the beat's last tick."""
    return None if state.last_tick is None else max(0.0, (now or time.time()) - state.last_tick)


def entry_call(entry: BeatEntry) -> tuple[TaskCall, list[str]]:
    """The call `tcel beat run` sends for an entry: its task, arguments, queue, expires (seconds) and priority,
    carrying the entry's name; and the options it does not apply (exchange, routing_key, headers...)."""
    from .task_call import TaskCall

    options = dict(entry.options)
    queue = options.pop("queue", None) or QUEUE
    expires, priority = options.pop("expires", None), options.pop("priority", None)
    call = TaskCall(
        entry.task,
        list(entry.args),
        dict(entry.kwargs),
        queue=str(queue),
        expires=float(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else None,
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else None,
        periodic=entry.name,
    )
    left = sorted(options) + (["expires"] if expires is not None and call.expires is None else [])
    return call, left
