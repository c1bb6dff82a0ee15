"""Waiting for a workflow to end: every task followed through the backend's channels, members done / total
as they finish, and how it ended (the final task's result, a group's results, or the first failure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import WaitTimeout
from .result_follower import Follower, following
from .result_store import ResultStore
from .task_record import TaskRecord
from .workflow import Node, kind, last_ids, result_ids, steps


@dataclass
class Ended:
    """How a waited-for workflow ended."""

    root: str
    kind: str
    done: int
    total: int
    finals: list[TaskRecord] = field(default_factory=list)  # the last step, a chord's body, a group's members
    failed: list[TaskRecord] = field(default_factory=list)
    shape: Any = None  # the finals' ids shaped as the result (workflow.result_ids)

    @property
    def state(self) -> str:
        return "FAILURE" if self.failed else "SUCCESS"

    @property
    def result(self) -> Any:
        results = {final.id: final.result for final in self.finals}

        def filled(ids: Any) -> Any:
            return [filled(i) for i in ids] if isinstance(ids, list) else results.get(ids)

        return filled(self.shape)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.root,
            "kind": self.kind,
            "state": self.state,
            "result": None if self.failed else self.result,
            "done": self.done,
            "total": self.total,
            "failed": [failure.as_dict() for failure in self.failed],
            "final_ids": [final.id for final in self.finals],
        }


def wait(store: ResultStore, node: Node, root: str, timeout: float, on_progress: Callable[[int, int], None]) -> Ended:
    """Follow every task until the workflow's end: its final tasks are done, or (but for a plain group, whose
    members all run) a task failed, after which Celery runs nothing that depended on it."""
    ids = [step.id for step in steps(node)]
    finals = last_ids(node)
    shape = kind(node)
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    with following(store) as follower:
        for task_id in ids:
            follower.follow(task_id)
        on_progress(0, len(ids))
        while True:
            done |= follower.next(deadline, lambda _, __: None)
            on_progress(len(done), len(ids))
            failed = [task_id for task_id in ids if done.get(task_id, {}).get("status") in ("FAILURE", "REVOKED")]
            if all(task_id in done for task_id in finals) or (failed and shape != "group"):
                # Celery sends a chain's next step before it stores the step's own result: the last step
                # can end before the one before it is stored; give those a moment rather than count them undone
                if not failed:
                    done |= _stored_soon(follower, [i for i in ids if i not in done], on_progress, len(ids))
                break
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"workflow {root} is not finished after {timeout:g}s ({len(done)}/{len(ids)} tasks done)",
                    hint=f"it goes on: see 'tcel result {root} --tree' later",
                )
    records = _records(store, [*finals, *failed])
    return Ended(
        root,
        shape,
        len(done),
        len(ids),
        [records[task_id] for task_id in finals if task_id in records],
        [records[task_id] for task_id in failed if task_id in records],
        result_ids(node),
    )


STORED_GRACE = 2.0


def _stored_soon(
    follower: Follower, missing: list[str], on_progress: Callable[[int, int], None], total: int
) -> dict[str, dict[str, Any]]:
    """The results of the `missing` tasks of a workflow that succeeded, as they are stored within
    STORED_GRACE seconds."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + STORED_GRACE
    while any(i not in found for i in missing) and time.monotonic() < deadline:
        found |= follower.next(deadline, lambda _, __: None)
        on_progress(total - len(missing) + len(found), total)
    return found


def _records(store: ResultStore, ids: list[str]) -> dict[str, TaskRecord]:
    return {shown.id: shown for shown in store.records(ids) if shown is not None}
