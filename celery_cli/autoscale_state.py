"""The autoscaler's newest decision, kept in the stack's Redis (one JSON string under AUTOSCALE_KEY) so that
`tcel status` shows it, whoever runs status and wherever the autoscaler runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .names import AUTOSCALE_KEY

if TYPE_CHECKING:
    from .result_store import ResultStore

STATE_TTL = 3600  # a state nobody refreshes (the autoscaler removed) goes away by itself


@dataclass(frozen=True)
class AutoscaleState:
    policy: str  # MIN:MAX:THRESHOLD:COOLDOWN
    current: int  # workers running at the look
    target: int  # workers it decided to run
    ready: int  # messages ready at the look
    action: str  # up, down or hold
    reason: str
    at: float  # when it decided (time.time())
    last_change: str = ""  # the newest up or down, as its log line said it
    last_change_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self, now: float) -> str:
        """`2..4 workers: 3 running, target 3 (hold: ...); last change 12s ago: ...`"""
        low, high = self.policy.split(":")[:2]
        text = f"{low}..{high} workers: {self.current} running, target {self.target} ({self.action}: {self.reason})"
        text += f", {max(0.0, now - self.at):.0f}s ago"
        if self.last_change and self.last_change_at is not None:
            text += f"; last change {max(0.0, now - self.last_change_at):.0f}s ago: {self.last_change}"
        return text


def write(store: ResultStore, state: AutoscaleState) -> None:
    with store.errors():
        store.client.set(AUTOSCALE_KEY, json.dumps(state.as_dict()), ex=STATE_TTL)


def read(store: ResultStore) -> AutoscaleState | None:
    with store.errors():
        text = store.client.get(AUTOSCALE_KEY)
    if not text:
        return None
    try:
        return AutoscaleState(**json.loads(str(text)))
    except (TypeError, ValueError):
        return None  # written by another version: nothing to show rather than an error
