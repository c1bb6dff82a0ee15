"""The names the client and the worker must agree on are the same on both sides."""

import ast
import functools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from celery_cli import names
from tests.conftest import REPO


def constants(path) -> dict:
    tree = ast.parse(path.read_text())
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }


def test_the_workers_index_keys_match_the_clients() -> None:
    worker = constants(REPO / "worker_hooks.py")
    assert worker["INDEX_KEY"] == names.INDEX_KEY
    assert worker["INFO_KEY"] == names.INFO_KEY
    assert worker["FLOW_KEY"] == names.FLOW_KEY
    assert (worker["FAILED_KEY"], worker["MAX_FAILURES"]) == (names.FAILED_KEY, names.MAX_FAILURES)


def test_the_workers_index_script_and_size_match_the_clients() -> None:
    worker = constants(REPO / "worker_hooks.py")
    assert worker["INDEX_SCRIPT"] == names.INDEX_SCRIPT
    assert (worker["MAX_TASKS"], worker["JOB_KEY"]) == (names.MAX_TASKS, names.JOB_KEY)


def test_the_workers_bound_on_kept_arguments_matches_the_clients() -> None:
    assert constants(REPO / "worker_hooks.py")["CALL_KEPT_MAX"] == names.CALL_KEPT_MAX


def test_the_default_queue_is_celerys_own() -> None:
    from celery import Celery

    app = Celery(set_as_current=False)
    assert app.conf.task_default_queue == names.QUEUE
    assert app.conf.task_default_exchange in (None, names.EXCHANGE)  # None means: named after the queue
    assert app.conf.task_default_routing_key in (None, names.ROUTING_KEY)


@functools.cache
def worker_hooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("worker_hooks_under_test", REPO / "worker_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=5), inner, max_size=10),
    max_leaves=200,
)


@settings(max_examples=150, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(min_value=10, max_value=400))
def test_arguments_show_alike_whoever_indexes_them(value, limit) -> None:
    from celery_cli.task_args import shown

    text = shown(value, limit)
    assert text == worker_hooks()._shown(value, limit), "the worker's copy must match the client's"
    whole = json.dumps(value)
    assert text == whole if len(whole) <= limit else (text.endswith("...") and whole.startswith(text[:-3]))
