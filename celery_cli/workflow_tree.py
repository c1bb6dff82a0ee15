"""A workflow read back from the backend, from any of its task ids: every task with its state and runtime and
its place (parent, group, chord body), whoever sent it.

Where it comes from: the workflow's sorted set (FLOW_KEY + its root's id, else its group's id) that tcel and
the workers' hooks keep, each task's hash in tcel's index (root, parent, group, chord_of), and what Celery's
Redis backend stores itself: `celery-task-meta-<id>` has `parent_id`, `group_id` and `children` (the tasks a
task sent: the next step of a chain, a group), which fill in what the index does not know; a chord still
running keeps its size in `celery-taskset-meta-<group>.s`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .names import FLOW_KEY, INFO_KEY
from .names import RESULT_KEY as META_KEY
from .result_store import ResultStore
from .task_record import READY_STATES, TaskRecord, record

GROUP_KEY = "celery-taskset-meta-"
ROUNDS = 4  # rounds of following Celery's own links (children, parents) past what the index knows


@dataclass
class Member:
    """One task of a workflow and its place in it."""

    record: TaskRecord
    parent: str | None = None
    group: str | None = None
    chord_of: str | None = None  # the group this task is the chord body of
    children: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the workflow keys it names: its flow, root, group, chord

    def as_dict(self) -> dict[str, Any]:
        return {**self.record.as_dict(), "parent": self.parent, "group": self.group, "chord_of": self.chord_of}


@dataclass
class GroupView:
    """A group's members and its chord body, with counts."""

    id: str
    members: list[str]
    parent: str | None = None
    body: str | None = None
    size: int | None = None  # a running chord's size, as the backend counts it
    states: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return max(len(self.members), self.size or 0)

    @property
    def done(self) -> int:
        return sum(count for state, count in self.states.items() if state in READY_STATES)

    @property
    def failed(self) -> int:
        return self.states.get("FAILURE", 0) + self.states.get("REVOKED", 0)


@dataclass
class Tree:
    asked: str
    members: dict[str, Member]
    groups: dict[str, GroupView]

    def tops(self) -> list[str]:
        """Tasks and groups hanging from nothing: the workflow's roots (usually one)."""
        tasks = [i for i, m in self.members.items() if not m.parent and not m.group and not m.chord_of]
        return tasks + [g.id for g in self.groups.values() if not g.parent]

    def below(self, task_id: str) -> list[str]:
        """What runs after a task: the next steps of a chain, and groups it started."""
        tasks = [i for i, m in self.members.items() if m.parent == task_id and not m.group and not m.chord_of]
        return tasks + [g.id for g in self.groups.values() if g.parent == task_id]

    def unfinished(self) -> list[str]:
        return [i for i, m in self.members.items() if m.record.state not in READY_STATES]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.asked,
            "roots": self.tops(),
            "tasks": [member.as_dict() for member in self.members.values()],
            "groups": [
                {
                    "id": g.id,
                    "parent": g.parent,
                    "chord_body": g.body,
                    "total": g.total,
                    "done": g.done,
                    "failed": g.failed,
                    "states": g.states,
                }
                for g in self.groups.values()
            ],
        }


def read(store: ResultStore, task_id: str) -> Tree:
    """The workflow `task_id` (a task's id, or a workflow's as `tcel group` prints it) belongs to: a tree of one
    task when it belongs to none.

    Celery gives a workflow's tasks different roots depending on who sent them (a plain client's chord members
    are each their own root, its body has the last member as root), so every key a task names (its workflow,
    root, group, chord) is read, and those of the tasks found, until nothing new turns up."""
    members: dict[str, Member] = {}
    keys_read: set[str] = set()
    wanted, keys = [task_id], {task_id}
    for _ in range(ROUNDS):
        found = _fetch(store, [i for i in wanted if i not in members])
        members |= found
        keys = (keys | {key for member in found.values() for key in member.keys}) - keys_read
        keys_read |= keys
        listed = _listed(store, sorted(keys))
        wanted = [i for i in dict.fromkeys(listed + _linked(found)) if i not in members]
        keys = set()
        if not wanted:
            break
    return Tree(task_id, members, _groups(store, members))


def _listed(store: ResultStore, keys: list[str]) -> list[str]:
    """The ids filed under each workflow key, in one round trip."""
    if not keys:
        return []
    with store.errors():
        pipe = store.client.pipeline(transaction=False)
        for key in keys:
            pipe.zrange(FLOW_KEY + key, 0, -1)
        return [str(i) for ids in pipe.execute() for i in ids]


def _fetch(store: ResultStore, ids: list[str]) -> dict[str, Member]:
    with store.errors():
        pipe = store.client.pipeline(transaction=False)
        for task_id in ids:
            pipe.get(META_KEY + task_id)
            pipe.hgetall(INFO_KEY + task_id)
        replies = pipe.execute()
    found = {}
    for position, task_id in enumerate(ids):
        meta_json, info = replies[2 * position], replies[2 * position + 1]
        shown = record(task_id, meta_json, info)
        if shown is None:
            continue
        meta = json.loads(meta_json) if meta_json else {}
        found[task_id] = Member(
            shown,
            parent=info.get("parent") or meta.get("parent_id"),
            group=info.get("group") or meta.get("group_id"),
            chord_of=info.get("chord_of") or None,
            children=_child_ids(meta.get("children") or []),
            keys=[
                k for k in {info.get(f) for f in ("flow", "root", "group", "chord_of")} | {meta.get("group_id")} if k
            ],
        )
    for member in found.values():  # a chord body carries a group id of its own: it is no member
        if member.chord_of:
            member.group = None
    return found


def _child_ids(children: list[Any]) -> list[str]:
    """Task ids in Celery's stored `children`: ((id, parent), None) for a task, ((id, parent), [members]) for a
    group."""
    ids: list[str] = []
    for child in children:
        if not isinstance(child, list | tuple) or len(child) != 2:
            continue
        head, members = child
        if isinstance(members, list):
            ids += _child_ids(members)
        elif isinstance(head, list | tuple) and head and isinstance(head[0], str):
            ids.append(head[0])
    return ids


def _linked(members: dict[str, Member]) -> list[str]:
    """Ids Celery's own links name (parents, children) that are not read yet."""
    linked = [m.parent for m in members.values() if m.parent]
    return list(dict.fromkeys(linked + [i for m in members.values() for i in m.children]))


def _groups(store: ResultStore, members: dict[str, Member]) -> dict[str, GroupView]:
    groups: dict[str, GroupView] = {}
    for task_id, member in members.items():
        if member.group:
            view = groups.setdefault(member.group, GroupView(member.group, []))
            view.members.append(task_id)
            view.parent = view.parent or member.parent
            state = member.record.state
            view.states[state] = view.states.get(state, 0) + 1
    for task_id, member in members.items():
        if member.chord_of:
            groups.setdefault(member.chord_of, GroupView(member.chord_of, [])).body = task_id
    if groups:
        with store.errors():
            sizes = store.client.mget([GROUP_KEY + gid + ".s" for gid in groups])
        for view, size in zip(groups.values(), sizes, strict=True):
            view.size = int(size) if size else None
    return groups
