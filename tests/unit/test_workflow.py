"""Workflows as typed and written (issue 27): steps, documents, their checks, each task's place; custom states
as shown; failures grouped; ages and short ids as typed. No engine needed."""

import json

import pytest

from celery_cli.errors import UsageError
from celery_cli.failures import Failure, Filters, by_exception, since
from celery_cli.task_ids import cleaned
from celery_cli.task_record import record, state_text
from celery_cli.workflow import Chain, Group, first_id, kind, last_ids, parse_document, parse_step, read_document, steps
from celery_cli.workflow_send import links, sent_now
from tests.conftest import run_tcel


def test_a_step_is_a_name_and_its_json_arguments() -> None:
    step = parse_step('tasks.greet("ann", [1, 2], {"k": 1})', "step 1")
    assert (step.name, step.args) == ("tasks.greet", ["ann", [1, 2], {"k": 1}])
    assert parse_step("tasks.ping", "x").args == []
    assert parse_step("tasks.add(-1, 2.5)", "x").args == [-1, 2.5]


@pytest.mark.parametrize(
    ("text", "said"), [("tasks.add(2, oops)", "not JSON"), ("(2)", "not a task step"), ("tasks.add(NaN)", "not JSON")]
)
def test_a_bad_step_is_a_usage_error_naming_it(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=said) as refused:
        parse_step(text, "step 3")
    assert "step 3" in refused.value.message


def test_a_document_nests_chains_groups_and_chords_and_names_a_bad_step() -> None:
    node = parse_document(
        {"chain": ["tasks.add(1, 2)", {"chord": ["tasks.mul(1, 2)", "tasks.mul(3)"], "then": "tasks.tsum"}]}
    )
    assert isinstance(node, Chain) and kind(node.steps[1]) == "chord"
    assert [s.name for s in steps(node)] == ["tasks.add", "tasks.mul", "tasks.mul", "tasks.tsum"]
    with pytest.raises(UsageError, match=r"workflow\.chain\[1\]\.group\[0\]"):
        parse_document({"chain": ["tasks.a", {"group": [{"task": 3}]}]})
    with pytest.raises(UsageError, match="needs 'then'"):
        parse_document({"chord": ["tasks.a"]})
    with pytest.raises(UsageError, match="unknown key 'args'"):
        parse_document({"chain": ["tasks.a"], "args": []})
    with pytest.raises(UsageError, match="not JSON"):
        read_document("{chain", "on stdin")


def test_each_task_knows_its_place_as_the_workers_hooks_record_it() -> None:
    node = parse_document({"chain": ["tasks.a", {"group": ["tasks.b", "tasks.c"]}, "tasks.d", "tasks.e"]})
    a, b, _, d, e = steps(node)
    group = node.steps[1]
    assert isinstance(group, Group)
    placed = links(node)
    assert placed[a.id] == {} and placed[b.id] == {"parent": a.id, "group": group.id}
    assert placed[d.id] == {"chord_of": group.id} and placed[e.id] == {"parent": d.id}
    assert first_id(node) == a.id and last_ids(node) == [e.id] and sent_now(node) == [a.id]
    chord = parse_document({"chord": ["tasks.b", "tasks.c"], "then": "tasks.d"})
    assert first_id(chord) == chord.id and last_ids(chord) == [steps(chord)[-1].id]
    assert sent_now(chord) == [s.id for s in steps(chord)[:2]]


def test_a_custom_state_shows_its_progress_or_its_meta() -> None:
    assert state_text("PROGRESS", {"current": 3, "total": 10}) == "PROGRESS ██████░░░░░░░░░░░░░░ 3/10"
    assert state_text("UPLOADING", {"file": "a.txt"}) == 'UPLOADING {"file": "a.txt"}'
    assert state_text("STARTED", None) == "STARTED"
    shown = record("t1", json.dumps({"status": "PROGRESS", "result": {"current": 1, "total": 2}}), {})
    assert shown is not None and shown.result is None and shown.meta == {"current": 1, "total": 2}
    retried = record("t2", json.dumps({"status": "RETRY", "result": {}}), {"retries": "2", "next_try": "1.5"})
    assert retried is not None and retried.state_text.startswith("RETRY #2, next try at ")


def test_failures_group_by_exception_and_message_most_frequent_first() -> None:
    found = [
        Failure("c", "tasks.a", "ValueError", "bad", "w1", 30.0, ""),
        Failure("b", "tasks.b", "KeyError", "k", "w1", 20.0, ""),
        Failure("a", "tasks.a", "ValueError", "bad", "w2", 10.0, ""),
    ]
    rows = by_exception(found)
    assert [(r["exception"], r["count"], r["examples"]) for r in rows] == [
        ("ValueError", 2, ["c", "a"]),
        ("KeyError", 1, ["b"]),
    ]
    assert Filters(name="tasks.a", exception="ValueError").admits("tasks.a", "w", 1.0, "ValueError")
    assert not Filters(worker="w2").admits("tasks.a", "celery@w1", None)


def test_ages_and_ids_as_typed() -> None:
    assert since(None) is None
    assert abs(since("2h") - since("120m")) < 1  # type: ignore[operator]
    with pytest.raises(UsageError, match="not an age"):
        since("yesterday")
    assert cleaned(" 73949a9d-b2da-… ") == "73949a9d-b2da-"
    with pytest.raises(UsageError, match="empty task id"):
        cleaned("  ")


def test_an_empty_id_is_refused_before_any_backend_is_asked() -> None:
    result = run_tcel("result", "", "--backend-url", "redis://127.0.0.1:9/0")
    assert result.code == 2 and "empty task id" in result.stderr, result.stderr


def test_group_by_needs_the_failure_state() -> None:
    result = run_tcel("results", "--group-by", "exception", "--backend-url", "redis://127.0.0.1:9/0")
    assert result.code == 2 and "--state FAILURE" in result.stderr, result.stderr


class Recorded:
    """A pipeline that keeps the commands the hooks would send to Redis."""

    def __init__(self) -> None:
        self.commands: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.commands.append((name, *args))


def test_the_worker_hooks_file_a_chain_step_with_the_steps_it_carries() -> None:
    from types import SimpleNamespace

    from tests.unit.test_names import worker_hooks

    hooks = worker_hooks()
    rest = [{"task": "tasks.c", "options": {"task_id": "c"}}, {"task": "tasks.b", "options": {"task_id": "b"}}]
    request = SimpleNamespace(id="a", root_id="a", parent_id=None, group=None, _payload=((), {}, {"chain": rest}))
    fields, embed = hooks._flow_fields(request)
    assert fields == {"root": "a", "flow": "a"}
    pipe = Recorded()
    hooks._write_flow(pipe, "a", fields, embed, 1.0, 60)
    assert ("hsetnx", "tcel:task:b", "parent", "a") in pipe.commands
    assert ("hsetnx", "tcel:task:c", "parent", "b") in pipe.commands
    assert ("zadd", "tcel:flow:a", {"a": 1.0, "b": 1.0, "c": 1.0}) in pipe.commands
    alone = SimpleNamespace(id="x", root_id="x", parent_id=None, group=None, _payload=((), {}, {}))
    assert hooks._flow_fields(alone)[0] == {}


def test_the_worker_hooks_file_a_plain_clients_chord_member_under_its_group_with_the_body() -> None:
    from types import SimpleNamespace

    from tests.unit.test_names import worker_hooks

    hooks = worker_hooks()
    body = {"task": "tasks.tsum", "options": {"task_id": "body", "group_id": "g"}}
    request = SimpleNamespace(id="m1", root_id="m1", parent_id=None, group="g", _payload=((), {}, {"chord": body}))
    fields, embed = hooks._flow_fields(request)
    pipe = Recorded()
    hooks._write_flow(pipe, "m1", fields, embed, 1.0, 60)
    assert ("hsetnx", "tcel:task:body", "chord_of", "g") in pipe.commands
    assert ("zadd", "tcel:flow:g", {"m1": 1.0, "body": 1.0}) in pipe.commands


def test_a_narrow_table_keeps_14_characters_of_an_id_which_result_takes_back() -> None:
    from rich.console import Console

    from celery_cli.tables import tasks_table
    from celery_cli.task_record import TaskRecord

    task_id = "73949a9d-b2da-4c1e-9f0a-0123456789ab"
    records = [TaskRecord(task_id, "SUCCESS", name="tasks.add", args="[2, 3]", result=5, worker="celery@worker-1")]
    console = Console(width=60, record=True, color_system=None)
    console.print(tasks_table("recent tasks", records))
    shown = next(word for word in console.export_text().split() if word.startswith("7394"))
    assert shown == "73949a9d-b2da-…" and cleaned(shown) == task_id[:14]


def test_then_refuses_options_that_apply_to_one_task() -> None:
    result = run_tcel(
        "call", "tasks.add", "1", "2", "--then", "tasks.mul(3)", "--countdown", "5",
        "--broker-url", "amqp://u:p@127.0.0.1:9//", "--backend-url", "redis://127.0.0.1:9/0",
    )  # fmt: skip
    assert result.code == 2 and "--then" in result.stderr, result.stderr


def test_a_bad_step_of_a_chain_is_refused_before_any_broker_is_asked() -> None:
    result = run_tcel(
        "chain", "tasks.add(1, 2)", "tasks.mul(3, oops)",
        "--broker-url", "amqp://u:p@127.0.0.1:9//", "--backend-url", "redis://127.0.0.1:9/0",
    )  # fmt: skip
    assert result.code == 2 and "step 2" in result.stderr, result.stderr


def test_a_waited_workflow_ending_in_a_group_gives_a_list_nested_as_celery_gives_it() -> None:
    from celery_cli.task_record import TaskRecord
    from celery_cli.workflow import result_ids
    from celery_cli.workflow_wait import Ended

    def ended(document: dict) -> Ended:
        node = parse_document(document)
        finals = [TaskRecord(i, "SUCCESS", result=n) for n, i in enumerate(last_ids(node), start=4)]
        return Ended("root", kind(node), len(finals), len(finals), finals, shape=result_ids(node))

    assert ended({"chain": ["tasks.add(1, 1)", {"group": ["tasks.mul(2)", "tasks.mul(3)"]}]}).result == [4, 5]
    assert ended({"group": ["tasks.a", {"group": ["tasks.b", "tasks.c"]}]}).result == [4, [5, 6]]
    assert ended({"chain": ["tasks.a", "tasks.b"]}).result == 4
    assert ended({"chord": ["tasks.a", "tasks.b"], "then": "tasks.tsum"}).result == 4
