"""When the autoscaler adds or removes workers: a pure decision from what it saw and what it remembers, with
hysteresis so that it does not flap. It adds when the backlog per worker stays above the threshold for a few
looks in a row, and removes one worker at a time once the queues have been empty and the workers idle for the
cool-down; between the two it holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

LOOKS = 2  # consecutive looks above the threshold before workers are added


@dataclass(frozen=True)
class Policy:
    minimum: int
    maximum: int
    threshold: float = 5.0  # ready messages per worker above which workers are added
    cooldown: float = 30.0  # seconds of empty queues and idle workers before one worker is removed
    looks: int = LOOKS

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(f"autoscale bounds must be 1 <= MIN <= MAX, not {self.minimum}:{self.maximum}")
        if self.threshold <= 0 or self.cooldown < 0 or self.looks < 1:
            raise ValueError("the threshold must be above 0, the cool-down 0 or more, looks 1 or more")

    @property
    def label(self) -> str:
        """How the autoscaler's container label and the project's state keep it: MIN:MAX:THRESHOLD:COOLDOWN."""
        return f"{self.minimum}:{self.maximum}:{self.threshold:g}:{self.cooldown:g}"

    @classmethod
    def from_label(cls, text: str) -> Policy:
        minimum, maximum, threshold, cooldown = text.split(":")
        return cls(int(minimum), int(maximum), float(threshold), float(cooldown))


def parse_bounds(text: str) -> tuple[int, int]:
    """`MIN:MAX` as `up --autoscale` takes it (ValueError when it is not two counts, 1 <= MIN <= MAX)."""
    low, sep, high = text.partition(":")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--autoscale takes MIN:MAX, such as 1:4, not {text!r}")
    minimum, maximum = int(low), int(high)
    if not 1 <= minimum <= maximum:
        raise ValueError(f"--autoscale needs 1 <= MIN <= MAX, not {text}")
    return minimum, maximum


@dataclass(frozen=True)
class Look:
    """What one look at the stack saw."""

    at: float  # seconds, monotonic
    ready: int  # messages ready in the queues the workers consume
    workers: int  # workers running (those being removed are not counted)
    busy: int | None = None  # tasks the workers hold (running or reserved); None when not asked


@dataclass(frozen=True)
class Memory:
    """What the policy remembers between looks."""

    above: int = 0  # consecutive looks with the backlog per worker above the threshold
    idle_since: float | None = None  # since when the queues have been empty and the workers idle


@dataclass(frozen=True)
class Decision:
    current: int
    target: int
    reason: str

    @property
    def action(self) -> str:
        return "up" if self.target > self.current else "down" if self.target < self.current else "hold"


def decide(policy: Policy, memory: Memory, look: Look) -> tuple[Decision, Memory]:
    """The number of workers to run after this look, why, and what to remember for the next one."""
    current = look.workers
    if current < policy.minimum or current > policy.maximum:
        target = min(max(current, policy.minimum), policy.maximum)
        return Decision(current, target, f"outside {policy.minimum}..{policy.maximum}"), Memory()
    per_worker = look.ready / max(current, 1)
    if per_worker > policy.threshold:
        above = memory.above + 1
        if above < policy.looks or current >= policy.maximum:
            why = "at the maximum" if current >= policy.maximum else f"look {above} of {policy.looks}"
            return Decision(current, current, f"backlog {per_worker:g}/worker, {why}"), Memory(above=above)
        target = min(policy.maximum, max(current + 1, math.ceil(look.ready / policy.threshold)))
        reason = f"backlog {per_worker:g}/worker above {policy.threshold:g} for {above} looks"
        return Decision(current, target, reason), Memory()
    if look.ready > 0 or (look.busy or 0) > 0:
        return Decision(current, current, f"backlog {per_worker:g}/worker, busy"), Memory()
    idle_since = memory.idle_since if memory.idle_since is not None else look.at
    idle = look.at - idle_since
    if current > policy.minimum and idle >= policy.cooldown:
        # the cool-down starts again: one worker removed per cool-down
        reason = f"idle for {idle:.0f}s (cool-down {policy.cooldown:g}s)"
        return Decision(current, current - 1, reason), replace(memory, above=0, idle_since=look.at)
    return Decision(current, current, f"idle for {idle:.0f}s"), Memory(idle_since=idle_since)
