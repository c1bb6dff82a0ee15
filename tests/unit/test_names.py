"""The names the client and the worker must agree on are the same on both sides."""

import ast

from celery_cli import names
from tests.conftest import REPO


def constants(path) -> dict:
    tree = ast.parse(path.read_text())
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
    }


def test_the_workers_index_keys_match_the_clients() -> None:
    worker = constants(REPO / "worker_hooks.py")
    assert worker["INDEX_KEY"] == names.INDEX_KEY
    assert worker["INFO_KEY"] == names.INFO_KEY


def test_the_workers_bound_on_kept_arguments_matches_the_clients() -> None:
    assert constants(REPO / "worker_hooks.py")["CALL_KEPT_MAX"] == names.CALL_KEPT_MAX


def test_the_default_queue_is_celerys_own() -> None:
    from celery import Celery

    app = Celery(set_as_current=False)
    assert app.conf.task_default_queue == names.QUEUE
    assert app.conf.task_default_exchange in (None, names.EXCHANGE)  # None means: named after the queue
    assert app.conf.task_default_routing_key in (None, names.ROUTING_KEY)
