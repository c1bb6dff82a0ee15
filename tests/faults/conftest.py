"""A stack of its own for the fault tests, which kill and restart its parts (the other tests never see it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import StackProject, make_project


@pytest.fixture(scope="session")
def fault_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    with make_project(engine, tmp_path_factory.mktemp("faults")) as project:
        project.env["TCEL_ADD_DELAY"] = "2"
        result = project.tcel("up")
        assert result.code == 0, result.stderr
        yield project


@pytest.fixture
def healthy(fault_stack: StackProject) -> Iterator[StackProject]:
    """The fault stack, brought back to health after the test whatever it broke."""
    yield fault_stack
    assert fault_stack.tcel("up").code == 0


def send(stack: StackProject, count: int, *args: str) -> list[str]:
    """Send `count` tsum tasks (numbers 0..count-1 plus args) through tcel; return their ids in order."""
    ids = []
    for n in range(count):
        result = stack.tcel("tsum", str(n), *args, "--quiet")
        assert result.code == 0, result.stderr
        ids.append(result.stdout.strip())
    return ids


def results(stack: StackProject, ids: list[str], timeout: float = 120) -> dict[str, dict]:
    """Wait until every task is ready (or the timeout passes); return each one's record."""
    deadline = time.monotonic() + timeout
    records: dict[str, dict] = {}
    while True:
        for task_id in ids:
            if records.get(task_id, {}).get("state") not in ("SUCCESS", "FAILURE", "REVOKED"):
                shown = stack.tcel("result", task_id, "--json")
                records[task_id] = json.loads(shown.stdout) if shown.stdout else {"state": "UNKNOWN"}
        if all(r["state"] == "SUCCESS" for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def tally(records: dict[str, dict], expected: dict[str, object]) -> tuple[int, int]:
    """(came back right, lost): a task is lost unless it has exactly its expected result."""
    right = sum(1 for task_id, value in expected.items() if records[task_id].get("result") == value
                and records[task_id].get("state") == "SUCCESS")
    return right, len(expected) - right

