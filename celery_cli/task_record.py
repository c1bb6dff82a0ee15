"""What is known of one task (Celery's stored result plus tcel's index of times), and the backend as a whole;
made from what Redis holds."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .task_args import shown

READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
# Celery's own states; any other is a task's custom state (update_state(state="PROGRESS", meta={...})).
BUILTIN_STATES = READY_STATES | {"PENDING", "RECEIVED", "STARTED", "RETRY", "REJECTED", "IGNORED"}
BAR_WIDTH = 20


@dataclass
class TaskRecord:
    """What is known of one task: Celery's stored result plus the index's times."""

    id: str
    state: str
    name: str | None = None
    args: str | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    worker: str | None = None
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    finished: float | None = None
    kwargs: str | None = None
    queue: str | None = None
    retry_of: str | None = None  # the task this one sent again (`tcel retry`)
    periodic: str | None = None  # the beat entry that sent it (the beat, or `tcel beat run`)
    job: dict[str, Any] | None = None  # a streamed sum's final task: numbers, chunks, and (looked up) chunk ids
    meta: Any = None  # what a task in a custom state reported with it (update_state's meta)
    retries: int | None = None  # a task retried: how many times so far (the workers' hooks count them)
    next_try: float | None = None  # ... and when the next try runs

    @property
    def runtime(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)

    @property
    def shown_state(self) -> str:
        """The state as tcel knows it: Celery says PENDING for a task sent (QUEUED) or received (RECEIVED)
        but not started, and for one it never heard of."""
        if self.state == "PENDING" and self.started is None:
            if self.received is not None:
                return "RECEIVED"
            if self.sent is not None:
                return "QUEUED"
        return self.state

    @property
    def state_text(self) -> str:
        """The state as a person reads it: a custom state with its progress, a retry with its count."""
        if self.state == "RETRY" and self.retries is not None:
            moment = iso_time(self.next_try, " ") or ""
            when = f", next try at {moment[11:19]}" if moment else ""
            return f"RETRY #{self.retries}{when}"
        return state_text(self.shown_state, self.meta)

    @property
    def failed(self) -> bool:
        """Ended without a result: what `tcel result` exits 9 for."""
        return self.state in ("FAILURE", "REVOKED")

    @property
    def queued(self) -> bool:
        """Known (sent or received) but not started: what Celery alone reports as PENDING."""
        return self.state == "PENDING" and self.started is None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("sent", "received", "started", "finished", "next_try"):
            data[key] = iso_time(data[key])
        data["runtime_seconds"] = round(self.runtime, 4) if self.runtime is not None else None
        data["queued"] = self.queued
        data["shown_state"] = self.shown_state
        return data


@dataclass
class BackendInfo:
    version: str
    memory_used: str
    keys: int
    indexed_tasks: int  # tcel's index of recent tasks (names.INDEX_KEY), bounded by the workers' hooks
    indexed_failures: int = 0  # the failure index (names.FAILED_KEY)


def record(task_id: str, meta_json: str | None, info: dict[str, str]) -> TaskRecord | None:
    if meta_json is None and not info:
        return None
    meta = json.loads(meta_json) if meta_json else {}
    state = meta.get("status", "PENDING")
    result = meta.get("result")
    error = None
    if state in ("FAILURE", "REVOKED") and isinstance(result, dict):
        error = f"{result.get('exc_type', 'Error')}: {exc_message(result.get('exc_message'))}"
        result = None
    elif state == "STARTED":
        result = None
    meta_shown = None
    if state not in BUILTIN_STATES:
        meta_shown, result = result, None
    return TaskRecord(
        id=task_id,
        state=state,
        name=meta.get("name") or info.get("name"),
        args=info.get("args") or (shown(meta["args"]) if meta.get("args") is not None else None),
        result=result,
        error=error,
        traceback=meta.get("traceback"),
        worker=meta.get("worker") or info.get("worker") or None,
        sent=_float(info.get("sent")),
        received=_float(info.get("received")),
        started=_float(info.get("started")),
        finished=_float(info.get("finished")) or timestamp(meta.get("date_done")),
        kwargs=info.get("kwargs") or (shown(meta["kwargs"]) if meta.get("kwargs") else None),
        queue=info.get("queue") or meta.get("queue"),
        retry_of=info.get("retry_of"),
        periodic=info.get("periodic"),
        job=json.loads(info["job"]) if info.get("job") else None,
        meta=meta_shown,
        retries=int(info["retries"]) if info.get("retries") else None,
        next_try=_float(info.get("next_try")),
    )


def state_text(state: str, meta: Any) -> str:
    """A custom state and its meta: a bar with current/total when the meta has them, else the meta as JSON."""
    if not isinstance(meta, dict) or not meta:
        return state
    current, total = meta.get("current"), meta.get("total")
    if isinstance(current, int | float) and isinstance(total, int | float) and total > 0:
        filled = int(BAR_WIDTH * min(max(current / total, 0), 1))
        return f"{state} {'█' * filled}{'░' * (BAR_WIDTH - filled)} {current:g}/{total:g}"
    return f"{state} {shown(meta, 60)}"


def exc_message(message: Any) -> str:
    if isinstance(message, (list, tuple)):
        return ", ".join(str(part) for part in message)
    return str(message)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def timestamp(iso: str | None) -> float | None:
    """Seconds since the epoch of Celery's `date_done` (naive times are UTC)."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso_time(epoch: float | None, sep: str = "T") -> str | None:
    """Local time with its offset, to the millisecond."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=sep, timespec="milliseconds")
