"""tcel's autoscaler (`tcel up --autoscale MIN:MAX`): a small service of the stack that looks at the queues the
workers consume every INTERVAL seconds, asks autoscale_policy what to run, adds or removes workers, logs one line
per decision that changes something, and keeps its newest decision in the stack's Redis for `tcel status`
(autoscale_state). It runs in the exporter's image as `python -m celery_cli.autoscaler`, with the Docker socket
mounted (the one privilege it needs: the engine's API); its secrets are files under /run/secrets that the
environment names, as the exporter's are."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from typing import Protocol

from .autoscale_policy import Decision, Look, Memory, Policy, decide
from .autoscale_state import AutoscaleState, write
from .errors import TcelError
from .exporter import broker_access, secret
from .queues import queues
from .remote_control import Control
from .result_store import ResultStore

INTERVAL = 1.0  # seconds between two looks (TCEL_AUTOSCALE_INTERVAL)
GRACE = 300.0  # seconds a removed worker may finish its tasks (TCEL_AUTOSCALE_GRACE)
READ_TIMEOUT = 0.5


class Scaler(Protocol):
    """What the autoscaler needs of an engine (stack/containers/scaling.py, stack/swarm/scaling.py)."""

    def count(self) -> int: ...

    def queues(self) -> list[str]: ...

    def scale(self, target: int) -> list[str]: ...


class Autoscaler:
    """One look, one decision, one action."""

    def __init__(self, policy: Policy, scaler: Scaler, broker_url: str, backend_url: str) -> None:
        self.policy = policy
        self.scaler = scaler
        self.broker_url = broker_url
        self.store = ResultStore(backend_url, READ_TIMEOUT * 2)
        self.memory = Memory()
        self.last_change = ""
        self.last_change_at: float | None = None

    def look(self) -> Look:
        workers = self.scaler.count()
        found = queues(broker_access(self.broker_url), self.scaler.queues(), READ_TIMEOUT)
        ready = sum(q.ready for q in found)
        busy = None
        if ready == 0 and workers > self.policy.minimum:  # only worth a broadcast when a removal is possible
            with Control(self.broker_url) as control:
                busy = sum(len(tasks or []) for tasks in control.inspect("active", None, READ_TIMEOUT).values())
        return Look(time.monotonic(), ready, workers, busy)

    def step(self) -> Decision:
        look = self.look()
        decision, self.memory = decide(self.policy, self.memory, look)
        if decision.action != "hold":
            names = self.scaler.scale(decision.target)
            verb = "added" if decision.action == "up" else "removing (warm shutdown)"
            self.last_change = f"{decision.current} -> {decision.target} workers: {decision.reason}; {verb} "
            self.last_change += ", ".join(names) or "none"
            self.last_change_at = time.time()
            print(f"autoscale {decision.action}: {self.last_change}", flush=True)
        state = AutoscaleState(
            self.policy.label,
            decision.current,
            decision.target,
            look.ready,
            decision.action,
            decision.reason,
            time.time(),
            self.last_change,
            self.last_change_at,
        )
        write(self.store, state)
        return decision

    def run(self, interval: float) -> None:
        while True:
            started = time.monotonic()
            try:
                self.step()
            except TcelError as exc:  # the broker or the engine not answering now: said, and tried again
                print(f"autoscale error: {exc}", flush=True)
            except Exception:  # a bug: its traceback in the log, and the next look tried
                traceback.print_exc()
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


def scaler_from_environment() -> Scaler:
    """The engine's scaler for the project TCEL_PROJECT names (TCEL_ENGINE: containers or swarm)."""
    from pathlib import Path

    from .settings import Project
    from .stack.docker_client import connect

    project = Project(os.environ["TCEL_PROJECT"], Path("/"))
    grace = float(os.environ.get("TCEL_AUTOSCALE_GRACE", GRACE))
    if os.environ.get("TCEL_ENGINE") == "swarm":
        from .stack.swarm.scaling import SwarmScaler

        return SwarmScaler(connect(), project)
    from .stack.containers.scaling import ContainerScaler

    return ContainerScaler(connect(), project, grace)


def main() -> None:
    policy = Policy.from_label(os.environ["TCEL_AUTOSCALE"])
    autoscaler = Autoscaler(
        policy, scaler_from_environment(), secret("CELERY_BROKER_URL"), secret("CELERY_RESULT_BACKEND_URL")
    )
    # as PID 1 of its container, a process gets no default action for SIGTERM: `docker stop` would wait 10 s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"tcel autoscaler: {policy.minimum}..{policy.maximum} workers, threshold {policy.threshold:g} ready "
          f"per worker, cool-down {policy.cooldown:g}s", flush=True)  # fmt: skip
    autoscaler.run(float(os.environ.get("TCEL_AUTOSCALE_INTERVAL", INTERVAL)))


if __name__ == "__main__":
    main()
