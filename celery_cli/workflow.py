"""Workflows as people write them: steps typed on the command line (`tasks.add(2, 3)`) or a small JSON document
(chain, group, chord), checked whole before anything is sent, each task given its id up front.

A step is a task name, optionally followed by its positional arguments in parentheses as JSON values:
`tasks.add(2, 3)`, `tasks.tsum([1, 2, 3])`, `tasks.ping`. A document is a step (that string, or
`{"task": NAME, "args": [...], "kwargs": {...}}`), or `{"chain": [...]}`, `{"group": [...]}`,
`{"chord": [...], "then": STEP}`, nested as Celery's canvas nests them. See docs/workflows.md.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .task_args import strict_json

NAME = re.compile(r"[A-Za-z_][\w.:-]*\Z")
STEP = re.compile(r"\s*([^\s(]+)\s*(?:\((.*)\))?\s*\Z", re.DOTALL)
MAX_TASKS = 100_000
HINT = "see 'tcel workflow --help' or docs/workflows.md for the syntax"


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Step:
    """One task of a workflow."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    where: str = "step"
    id: str = field(default_factory=_new_id)


@dataclass
class Group:
    """Tasks run in parallel; with `then`, a chord: `then` runs once on the list of their results."""

    members: list[Node]
    where: str = "group"
    then: Node | None = None
    id: str = field(default_factory=_new_id)


@dataclass
class Chain:
    """Steps run one after the other, each given the result of the one before."""

    steps: list[Node]
    where: str = "chain"


Node = Step | Group | Chain


def kind(node: Node) -> str:
    if isinstance(node, Step):
        return "task"
    if isinstance(node, Chain):
        return "chain"
    return "chord" if node.then is not None else "group"


def parse_step(text: str, where: str) -> Step:
    """`NAME` or `NAME(ARG, ...)`, each ARG a JSON value."""
    match = STEP.match(text)
    if not match or not NAME.match(match.group(1)):
        raise UsageError(f"workflow {where}: {text!r} is not a task step", hint="write NAME or NAME(ARG, ...)")
    name, inner = match.group(1), match.group(2)
    args: list[Any] = []
    if inner is not None and inner.strip():
        try:
            args = strict_json(f"[{inner}]")
        except ValueError as exc:
            raise UsageError(
                f"workflow {where}: the arguments of {name} are not JSON values ({exc})",
                hint='write them as JSON: tasks.greet("ann", [1, 2], {"k": 1})',
            ) from None
    return Step(name, args, {}, where)


def parse_document(data: Any, where: str = "workflow") -> Node:
    """A workflow from its JSON document, every step checked."""
    if isinstance(data, str):
        return parse_step(data, where)
    if not isinstance(data, dict):
        raise UsageError(f"workflow {where}: expected a step or an object, got {type(data).__name__}", hint=HINT)
    shapes = [key for key in ("task", "chain", "group", "chord") if key in data]
    if len(shapes) != 1:
        raise UsageError(
            f"workflow {where}: give one of task, chain, group, chord (got {', '.join(sorted(data)) or 'none'})",
            hint=HINT,
        )
    shape = shapes[0]
    allowed = {"task": {"task", "args", "kwargs"}, "chain": {"chain"}, "group": {"group"}, "chord": {"chord", "then"}}
    unknown = sorted(set(data) - allowed[shape])
    if unknown:
        raise UsageError(f"workflow {where}: unknown key {unknown[0]!r} in a {shape}", hint=HINT)
    if shape == "task":
        return _task(data, where)
    items = data[shape]
    if not isinstance(items, list) or not items:
        raise UsageError(f"workflow {where}: {shape} must be a non-empty list of steps", hint=HINT)
    nodes = [parse_document(item, f"{where}.{shape}[{index}]") for index, item in enumerate(items)]
    if shape == "chain":
        return Chain(nodes, where)
    if shape == "group":
        return Group(nodes, where)
    if "then" not in data:
        raise UsageError(f"workflow {where}: a chord needs 'then', the step run on its results", hint=HINT)
    return Group(nodes, where, then=parse_document(data["then"], f"{where}.then"))


def _task(data: dict[str, Any], where: str) -> Step:
    name, args, kwargs = data["task"], data.get("args", []), data.get("kwargs", {})
    if not isinstance(name, str) or not NAME.match(name):
        raise UsageError(f"workflow {where}: {name!r} is not a task name", hint="give the registered name: tasks.add")
    if not isinstance(args, list):
        raise UsageError(f"workflow {where}: args of {name} must be a JSON list", hint=HINT)
    if not isinstance(kwargs, dict):
        raise UsageError(f"workflow {where}: kwargs of {name} must be a JSON object", hint=HINT)
    return Step(name, args, kwargs, where)


def read_document(text: str, source: str) -> Node:
    """A workflow document read from a file or stdin."""
    try:
        data = strict_json(text)
    except ValueError as exc:
        raise UsageError(f"workflow {source} is not JSON ({exc})", hint=HINT) from None
    node = parse_document(data)
    size = len(steps(node))
    if size > MAX_TASKS:
        raise UsageError(f"workflow {source} has {size:,} tasks, more than {MAX_TASKS:,}", hint="split it")
    return node


def steps(node: Node) -> list[Step]:
    """Every task of the workflow, in the order it was written."""
    if isinstance(node, Step):
        return [node]
    if isinstance(node, Chain):
        return [step for child in node.steps for step in steps(child)]
    return [step for child in node.members for step in steps(child)] + (steps(node.then) if node.then else [])


def first_id(node: Node) -> str:
    """The workflow's key: its first task's id for a chain or a task, the group's id for a group or a chord;
    every task is sent with it as its root id, and the workers' hooks file it under it."""
    if isinstance(node, Chain):
        return first_id(node.steps[0])
    return node.id


def last_ids(node: Node) -> list[str]:
    """The tasks whose end is the workflow's end: a chain's last step's, a chord's body's, a group's members'."""
    if isinstance(node, Step):
        return [node.id]
    if isinstance(node, Chain):
        return last_ids(node.steps[-1])
    if node.then is not None:
        return last_ids(node.then)
    return [task_id for member in node.members for task_id in last_ids(member)]


def result_ids(node: Node) -> Any:
    """The ids whose results make the workflow's result, shaped as Celery's `.get()` returns it: a task's id,
    or a list per group, nested as the groups are (the last step of a chain, the body of a chord)."""
    if isinstance(node, Step):
        return node.id
    if isinstance(node, Chain):
        return result_ids(node.steps[-1])
    if node.then is not None:
        return result_ids(node.then)
    return [result_ids(member) for member in node.members]
