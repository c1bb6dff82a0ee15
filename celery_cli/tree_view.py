"""How `tcel result --tree` draws a workflow (each task with its state and runtime, groups as counts with their
failures listed when they are big, a chord's body under its header), and `results --group-by exception`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tables import cell, seconds, short, table, value

if TYPE_CHECKING:
    from rich.table import Table
    from rich.tree import Tree as Drawn

    from .workflow_tree import GroupView, Member, Tree

MEMBERS_SHOWN = 20  # a group up to this size lists every member; a bigger one its counts and failures
FAILURES_SHOWN = 10


def draw(tree: Tree) -> Drawn:
    from rich.tree import Tree as Drawn

    tasks = len(tree.members)
    done = tasks - len(tree.unfinished())
    drawn = Drawn(f"[bold]workflow of {cell(tree.asked)}[/bold]: {done}/{tasks} tasks done")
    for top in tree.tops():
        _draw(tree, top, drawn, set())
    return drawn


def task_line(member: Member, asked: str) -> str:
    r = member.record
    state = r.state_text
    colour = {"SUCCESS": "green", "FAILURE": "red", "REVOKED": "red", "STARTED": "cyan"}.get(r.shown_state, "yellow")
    parts = [f"{cell(r.name or '?')} {cell(r.id)}", f"[{colour}]{cell(state)}[/{colour}]"]
    if r.state == "SUCCESS":
        parts.append(f"→ {cell(short(value(r.result)))}")
    elif r.error:
        parts.append(cell(short(r.error, 80)))
    if r.runtime is not None:
        parts.append(cell(seconds(r.runtime)))
    line = "  ".join(parts)
    return f"[bold]{line}[/bold] ◀" if r.id == asked else line


def _draw(tree: Tree, item: str, under: Drawn, seen: set[str]) -> None:
    if item in seen:  # links made by hand can loop; draw each once
        return
    seen.add(item)
    if item in tree.groups:
        _draw_group(tree, tree.groups[item], under, seen)
        return
    branch = under.add(task_line(tree.members[item], tree.asked))
    for child in tree.below(item):
        _draw(tree, child, branch, seen)


def _draw_group(tree: Tree, group: GroupView, under: Drawn, seen: set[str]) -> None:
    kind = "chord" if group.body else "group"
    failed = f", [red]{group.failed} failed[/red]" if group.failed else ""
    branch = under.add(f"{kind} {cell(group.id)}: {group.done}/{group.total} done{failed}")
    members = group.members
    if len(members) <= MEMBERS_SHOWN:
        for member_id in members:
            _draw(tree, member_id, branch, seen)
    else:
        states = ", ".join(f"{count} {state}" for state, count in sorted(group.states.items()))
        branch.add(f"{len(members)} members: {cell(states)}")
        failures = [m for m in members if tree.members[m].record.state in ("FAILURE", "REVOKED")]
        for member_id in failures[:FAILURES_SHOWN]:
            branch.add(task_line(tree.members[member_id], tree.asked))
        if len(failures) > FAILURES_SHOWN:
            branch.add(f"... {len(failures) - FAILURES_SHOWN} more failed (--json lists every task)")
        if tree.asked in members and tree.asked not in failures:
            branch.add(task_line(tree.members[tree.asked], tree.asked))
    if group.body and group.body in tree.members:
        body = branch.add("then " + task_line(tree.members[group.body], tree.asked))
        seen.add(group.body)
        for child in tree.below(group.body):
            _draw(tree, child, body, seen)


def failure_groups(rows: list[dict[str, Any]]) -> Table:
    """Failures grouped by exception and message: count, tasks, first and last seen, example ids."""
    return table(
        f"failures by exception ({sum(r['count'] for r in rows):,} in {len(rows)} groups)",
        ["count", "exception", "message", "tasks", "first seen", "last seen", "examples"],
        [
            [
                f"{r['count']:,}",
                r["exception"],
                short(r["message"], 60),
                ", ".join(r["tasks"]),
                r["first_seen"].replace("T", " ")[:19],
                r["last_seen"].replace("T", " ")[:19],
                ", ".join(example[:8] for example in r["examples"]),
            ]
            for r in rows
        ],
    )
