"""Workflows on the real stack (issue 27): chains, groups and chords sent from the command line with Celery's
canvas, read back with `result --tree` (also a plain Celery client's chord), revoked with `revoke --tree`,
progress seen by `--wait --json`, failures grouped and retried in bulk, and short ids."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, StackProject, make_project

FLOW_TASKS = """

@app.task
def mul(x, y):
    return x * y


@app.task
def boom(message):
    raise ValueError(message)


@app.task
def sleepy(x, seconds=2):
    time.sleep(seconds)
    return x


@app.task(bind=True, max_retries=3)
def again(self):
    raise self.retry(countdown=60)


@app.task
def flaky(message):
    raise RuntimeError(message)


@app.task
def twice(message):
    raise KeyError(message)


@app.task(bind=True)
def report(self, total):
    for done in range(1, total + 1):
        self.update_state(state="PROGRESS", meta={"current": done, "total": total})
        time.sleep(0.5)
    return total
"""
SETTLE = 60  # seconds a poll waits for the stack to reach a state; never a measure of speed


@pytest.fixture(scope="module")
def flows(engine, tmp_path_factory) -> Iterator[StackProject]:
    """A stack running the seed's tasks plus mul, boom, again, flaky, twice, sleepy and report."""
    directory = tmp_path_factory.mktemp("flows")
    for name in ("tasks.py", "celeryconfig.py", "worker_hooks.py", "Dockerfile", ".dockerignore", "constraints.txt"):
        shutil.copy(REPO / name, directory / name)
    with (directory / "tasks.py").open("a") as tasks:
        tasks.write(FLOW_TASKS)
    with make_project(engine, directory) as project:
        result = project.tcel("up", timeout=600)
        assert result.code == 0, result.stderr
        try:
            yield project
        finally:
            images = {
                c.attrs["Config"]["Image"] for c in project.containers() if c.labels.get("io.tcel.service") == "worker"
            }
            project.remove_everything()
            for image in images:
                with contextlib.suppress(Exception):  # another stack may use it
                    project.engine.images.remove(image)


def waited(project: StackProject, *args: str, code: int = 0, input: str | None = None) -> dict:
    result = project.tcel(*args, "--wait", "--timeout", "120", "--json", input=input)
    assert result.code == code, result.stderr
    return json.loads(result.stdout)


def tree(project: StackProject, task_id: str) -> dict:
    result = project.tcel("result", task_id, "--tree", "--json")
    assert result.code in (0, 9), result.stderr
    return json.loads(result.stdout)


def tree_until(project: StackProject, task_id: str, holds) -> dict:
    deadline = time.monotonic() + SETTLE
    while True:
        found = tree(project, task_id)
        if holds(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def by_name(found: dict) -> dict[str, list[dict]]:
    named: dict[str, list[dict]] = {}
    for task in found["tasks"]:
        named.setdefault(task["name"], []).append(task)
    return named


def test_a_chain_typed_with_then_runs_in_order_and_its_tree_links_the_steps(flows) -> None:
    ended = waited(flows, "call", "tasks.mul", "2", "3", "--then", "tasks.mul(4)", "--then", "tasks.mul(5)")
    assert (ended["kind"], ended["state"], ended["result"], ended["done"], ended["total"]) == (
        "chain",
        "SUCCESS",
        120,
        3,
        3,
    )
    found = tree(flows, ended["id"])
    steps = {t["id"]: t for t in found["tasks"]}
    assert found["roots"] == [ended["id"]]
    last = steps[ended["final_ids"][0]]
    middle = steps[last["parent"]]
    assert (middle["result"], steps[middle["parent"]]["result"], last["result"]) == (24, 6, 120)
    assert all(t["state"] == "SUCCESS" and t["runtime_seconds"] is not None for t in found["tasks"])
    drawn = flows.tcel("result", ended["id"][:10], "--tree")
    assert drawn.code == 0 and "3/3 tasks done" in drawn.stdout, drawn.stdout + drawn.stderr


def test_a_group_and_a_chord_end_with_their_results(flows) -> None:
    group = waited(flows, "group", "tasks.mul(1, 2)", "tasks.mul(3, 4)", "tasks.mul(5, 6)")
    assert (group["kind"], group["result"]) == ("group", [2, 12, 30])
    chord = waited(flows, "chord", "tasks.mul(1, 2)", "tasks.mul(3, 4)", "--then", "tasks.tsum")
    assert (chord["kind"], chord["result"], chord["total"]) == ("chord", 14, 3)
    found = tree(flows, chord["final_ids"][0])
    (view,) = found["groups"]
    assert (view["total"], view["done"], view["failed"], view["chord_body"]) == (2, 2, 0, chord["final_ids"][0])


def test_a_chord_of_a_thousand_from_a_document_on_stdin(flows) -> None:
    document = {"chord": [f"tasks.mul({n}, 2)" for n in range(1000)], "then": "tasks.tsum"}
    ended = waited(flows, "workflow", "-", input=json.dumps(document))
    assert (ended["result"], ended["done"], ended["total"]) == (2 * sum(range(1000)), 1001, 1001)
    found = tree(flows, ended["id"])
    (view,) = found["groups"]
    assert (view["total"], view["done"], view["states"]) == (1000, 1000, {"SUCCESS": 1000})
    drawn = flows.tcel("result", ended["id"], "--tree")
    assert "1000/1000 done" in drawn.stdout and "then tasks.tsum" in drawn.stdout, drawn.stdout


def test_a_chord_with_a_failing_member_shows_the_error_and_never_runs_its_body(flows) -> None:
    ended = waited(flows, "chord", "tasks.mul(2, 2)", 'tasks.boom("disk full")', "--then", "tasks.tsum", code=9)
    assert ended["state"] == "FAILURE"
    found = tree(flows, ended["id"])
    named = by_name(found)
    (failed,) = named["tasks.boom"]
    assert failed["state"] == "FAILURE" and "ValueError: disk full" in failed["error"]
    (body,) = named["tasks.tsum"]
    assert body["state"] != "SUCCESS" and body["started"] is None, body
    drawn = flows.tcel("result", failed["id"], "--tree")
    assert drawn.code == 9 and "ValueError: disk full" in drawn.stdout, drawn.stdout


def test_a_plain_celery_clients_chord_is_seen_in_the_tree(flows) -> None:
    from celery import Celery, chord, signature

    stack = flows.connection
    app = Celery("client", broker=stack.broker_url(), backend=stack.backend_url(), set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    try:
        body = chord([signature("tasks.mul", args=(n, 10), app=app) for n in range(5)])(
            signature("tasks.tsum", app=app)
        )
        assert body.get(timeout=SETTLE) == 100
        body_id = body.id
        del body  # before the app closes: a result's __del__ talks to its backend
    finally:
        app.close()
    found = tree_until(flows, body_id, lambda t: len(t["tasks"]) == 6)
    (view,) = found["groups"]
    assert (view["total"], view["done"], view["chord_body"]) == (5, 5, body_id)
    assert sorted(t["result"] for t in by_name(found)["tasks.mul"]) == [0, 10, 20, 30, 40]


def test_a_plain_celery_clients_chain_shows_its_steps_not_run_yet_then_each_once(flows) -> None:
    """The chain's first step files the rest as pending; each later step files only the next (one write each)."""
    from celery import Celery, chain, signature

    stack = flows.connection
    app = Celery("client", broker=stack.broker_url(), backend=stack.backend_url(), set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    try:
        first = signature("tasks.sleepy", args=(7,), kwargs={"seconds": 2}, app=app)
        rest = [signature("tasks.sleepy", kwargs={"seconds": 0}, app=app) for _ in range(5)]
        last = chain(first, *rest).apply_async()
        root, last_id = last.parent.parent.parent.parent.parent.id, last.id
        del last
    finally:
        app.close()
    early = tree_until(flows, root, lambda t: len(t["tasks"]) == 6)
    assert len(early["tasks"]) == 6 and any(t["id"] == last_id and t["started"] is None for t in early["tasks"])
    done = tree_until(flows, root, lambda t: all(x["state"] == "SUCCESS" for x in t["tasks"]))
    assert sorted(t["result"] for t in done["tasks"]) == [7] * 6 and len({t["id"] for t in done["tasks"]}) == 6


def test_revoke_tree_stops_what_had_not_run(flows) -> None:
    steps = ["tasks.sleepy(1, 3)"] + ["tasks.sleepy"] * 4
    sent = flows.tcel_json("chain", *steps)
    root = sent["id"]
    tree_until(flows, root, lambda t: any(x["state"] == "STARTED" for x in t["tasks"]))
    revoked = flows.tcel_json("revoke", root, "--tree")
    assert revoked["revoked"] is True and len(revoked["ids"]) >= 4, revoked
    found = tree_until(
        flows, root, lambda t: all(x["state"] in ("SUCCESS", "REVOKED", "FAILURE") for x in t["tasks"][:2])
    )
    later = [t for t in found["tasks"] if t["id"] != root]
    assert later and all(t["state"] != "SUCCESS" and t["started"] is None for t in later), later


def test_short_ids_an_ambiguous_prefix_and_an_empty_id(flows) -> None:
    record = waited(flows, "call", "tasks.mul", "6", "7")
    shown = flows.tcel("result", record["id"][:8], "--json")
    assert shown.code == 0 and json.loads(shown.stdout)["result"] == 42, shown.stderr
    cut = flows.tcel("result", record["id"][:14] + "…", "--json")
    assert cut.code == 0 and json.loads(cut.stdout)["id"] == record["id"], cut.stderr
    ids = [t["id"] for t in flows.tcel_json("results", "-n", "200")["tasks"]]
    common = max("0123456789abcdef", key=lambda c: sum(i.startswith(c) for i in ids))
    assert sum(i.startswith(common) for i in ids) >= 2
    ambiguous = flows.tcel("result", common)
    assert ambiguous.code == 2 and "ambiguous" in ambiguous.stderr, ambiguous.stderr
    empty = flows.tcel("result", "")
    assert empty.code == 2 and "empty task id" in empty.stderr, empty.stderr
    unknown = flows.tcel("result", "zz")
    assert unknown.code == 10, unknown.stderr


def test_a_bad_step_is_refused_before_anything_is_sent(flows, tmp_path: Path) -> None:
    before = flows.tcel_json("results", "-n", "1")["tasks"]
    bad = flows.tcel("chain", "tasks.mul(1, 2)", "tasks.mul(3, oops)")
    assert bad.code == 2 and "step 2" in bad.stderr, bad.stderr
    unknown = flows.tcel("group", "tasks.mul(1, 2)", "tasks.nope(1)")
    assert unknown.code == 2 and "tasks.nope" in unknown.stderr, unknown.stderr
    assert flows.tcel_json("results", "-n", "1")["tasks"] == before


def test_progress_reported_by_a_task_is_one_json_line_per_change(flows) -> None:
    result = flows.tcel("call", "tasks.report", "4", "--wait", "--timeout", "60", "--json")
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    progress = lines[:-1]
    assert all(line["state"] == "PROGRESS" for line in progress), lines
    currents = [line["meta"]["current"] for line in progress]
    assert len(set(currents)) >= 3 and currents == sorted(set(currents)), currents
    assert (lines[-1]["state"], lines[-1]["result"]) == ("SUCCESS", 4)


def test_failures_grouped_by_exception_and_retried_in_bulk_with_filters(flows) -> None:
    waited(flows, "group", *['tasks.boom("disk full")'] * 100, code=9)
    waited(flows, "group", *['tasks.flaky("try later")'] * 10, code=9)
    grouped = flows.tcel_json("results", "--state", "FAILURE", "--group-by", "exception", "--since", "10m")
    rows = {(g["exception"], g["message"]): g for g in grouped["groups"]}
    assert rows[("ValueError", "disk full")]["count"] >= 100
    assert rows[("RuntimeError", "try later")]["count"] == 10
    assert rows[("RuntimeError", "try later")]["tasks"] == ["tasks.flaky"]
    chosen = ["--state", "FAILURE", "--name", "tasks.boom", "--exception", "ValueError", "--since", "10m"]
    dry = flows.tcel_json("retry", *chosen, "--dry-run")
    assert len(dry["would_retry"]) >= 100 and dry["retried"] == []
    assert {row["task"] for row in dry["would_retry"]} == {"tasks.boom"}
    refused = flows.tcel("retry", *chosen)
    assert refused.code == 2 and "--yes" in refused.stderr, refused.stderr
    done = flows.tcel_json("retry", *chosen, "--yes")
    assert sorted(r["retry_of"] for r in done["retried"]) == sorted(r["retry_of"] for r in dry["would_retry"])
    new = done["retried"][0]["id"]
    record = json.loads(flows.tcel("result", new, "--json").stdout)
    assert record["retry_of"] == done["retried"][0]["retry_of"] and record["name"] == "tasks.boom"
    flaky = flows.tcel_json("results", "--name", "tasks.flaky", "-n", "100")["tasks"]
    assert len(flaky) == 10 and all(t["retry_of"] is None for t in flaky)


def test_a_retrying_task_shows_its_retry_count_and_next_try(flows) -> None:
    task_id = flows.tcel("call", "tasks.again", "--quiet").stdout.strip()
    deadline = time.monotonic() + SETTLE
    record = {}
    while record.get("retries") is None and time.monotonic() < deadline:
        time.sleep(0.5)
        record = json.loads(flows.tcel("result", task_id, "--json").stdout)
    assert (record["state"], record["retries"]) == ("RETRY", 1), record
    assert record["next_try"] is not None
    shown = flows.tcel("result", task_id[:10])
    assert "RETRY #1, next try at" in shown.stdout, shown.stdout
    flows.tcel("revoke", task_id)


def test_revoke_tree_of_a_task_no_record_knows_yet_revokes_it_anyway(flows) -> None:
    import uuid

    queued = str(uuid.uuid4())  # as a plain client's task queued behind others: no worker has received it
    revoked = flows.tcel_json("revoke", queued, "--tree")
    assert revoked["revoked"] is True and revoked["ids"] == [queued], revoked


def test_a_workflow_filed_after_its_later_step_ran_keeps_the_arguments_that_step_ran_with(flows) -> None:
    """The client files a workflow after publishing it; a fast chain's next step may have run by then, its hook
    storing the exact call (the step before's result first). Filing must not overwrite it with the signature's
    partial arguments, or `retry` sends the wrong call."""
    from celery_cli.result_store import ResultStore
    from celery_cli.workflow import Chain, Step
    from celery_cli.workflow_send import index

    ended = waited(flows, "call", "tasks.mul", "2", "3", "--then", "tasks.mul(7)")
    first, last = ended["id"], ended["final_ids"][0]
    store = ResultStore(flows.connection.backend_url())

    def call(task_id: str) -> list:
        return json.loads(store.client.hget(f"tcel:task:{task_id}", "call"))["args"]

    assert call(last) == [6, 7]  # what the worker got
    late = Chain([Step("tasks.mul", [2, 3], id=first), Step("tasks.mul", [7], id=last)])
    index(store, late, first, "celery", time.time())  # the client filing once the chain has run
    assert (call(first), call(last)) == ([2, 3], [6, 7])


def test_two_bulk_retries_at_once_send_each_failure_once(flows) -> None:
    from concurrent.futures import ThreadPoolExecutor

    waited(flows, "group", *['tasks.twice("once")'] * 50, code=9)
    chosen = ["retry", "--state", "FAILURE", "--name", "tasks.twice", "--yes"]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: flows.tcel_json(*chosen), range(2)))
    retried = [row["retry_of"] for run in runs for row in run["retried"]]
    assert len(retried) == len(set(retried)) >= 50, [len(run["retried"]) for run in runs]
