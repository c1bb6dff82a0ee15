"""One task to send by name: what the publisher sends and the index keeps (call.py sends it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import UsageError
from .names import QUEUE


@dataclass(frozen=True)
class TaskCall:
    """One task to send by name: its arguments and how Celery delivers it."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = QUEUE
    countdown: float | None = None  # seconds from sending; the message carries it as an ETA
    eta: datetime | None = None
    expires: float | datetime | None = None  # seconds from sending, or a moment
    priority: int | None = None
    retry_of: str | None = None  # the task this one sends again
    periodic: str | None = None  # the beat entry it is sent for (`tcel beat run`)
    job: dict[str, Any] | None = None  # what a streamed sum's final task sums up, kept in the index with it

    def __post_init__(self) -> None:
        if self.countdown is not None and self.eta is not None:
            raise UsageError("--countdown and --eta both say when to run", hint="give one of them")
