"""Sending a workflow with Celery's own canvas (signatures by name, chain, group, chord), so that a chord uses
the Redis backend's native chord support, and filing every task in tcel's index under the workflow's key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .credentials import mask_url
from .endpoints import Endpoints
from .errors import BackendRefused, ServiceUnreachable, start_or_check, unreachable
from .names import FLOW_KEY, INDEX_TTL, INFO_KEY
from .result_store import ResultStore
from .task_args import shown
from .task_index import index as index_task
from .task_index import kept_call, run
from .workflow import Chain, Group, Node, Step, first_id, steps

if TYPE_CHECKING:
    import redis
    from celery import Celery


def send(endpoints: Endpoints, node: Node, queue: str) -> str:
    """Send the workflow; index it when a backend is known; return its key (the root id every task carries)."""
    root = first_id(node)
    if endpoints.backend_url is not None:
        store = ResultStore(endpoints.backend_url)
        with store.errors():
            store.client.ping()  # a backend that does not answer is refused before anything is sent
    app = _client_app(endpoints)
    try:
        with _broker_errors(endpoints.broker_url):
            sent = _canvas(app, node, root, queue).apply_async()
    finally:
        app.close()
    _take_group_ids(node, _group_ids(sent))
    if endpoints.backend_url is not None:
        try:
            index(ResultStore(endpoints.backend_url), node, root, queue, time.time())
        except (ServiceUnreachable, BackendRefused) as error:
            raise ServiceUnreachable(
                f"workflow {root} was sent, but filing it in the backend failed: {error.message}",
                hint=f"it goes on; once the backend answers, 'tcel result {root} --tree' shows what the workers saw",
            ) from None
    return root


def links(
    node: Node, parent: str | None = None, group: str | None = None, chord_of: str | None = None
) -> dict[str, dict[str, str]]:
    """Each task's place in the workflow, as the workers' hooks record it: parent, group, chord_of."""
    if isinstance(node, Step):
        place = {"parent": parent, "group": group, "chord_of": chord_of}
        return {node.id: {key: value for key, value in place.items() if value}}
    if isinstance(node, Group):
        found: dict[str, dict[str, str]] = {}
        for member in node.members:
            found |= links(member, parent, node.id, None)
        if node.then is not None:
            found |= links(node.then, None, None, node.id)
        return found
    found = links(node.steps[0], parent, group, chord_of)
    for before, child in zip(node.steps, node.steps[1:], strict=False):
        found |= links(child, *_end(before))
    return found


def _end(node: Node) -> tuple[str | None, None, str | None]:
    """What the step after `node` in a chain hangs from: its parent task, or the group it is the chord body of
    (Celery makes a group followed by a step into a chord)."""
    if isinstance(node, Step):
        return node.id, None, None
    if isinstance(node, Chain):
        return _end(node.steps[-1])
    if node.then is not None:
        return _end(node.then)
    return None, None, node.id


def sent_now(node: Node) -> list[str]:
    """The tasks published at once: a chain's first step's, a group's members', a chord's header's."""
    if isinstance(node, Step):
        return [node.id]
    if isinstance(node, Chain):
        return sent_now(node.steps[0])
    return [task_id for member in node.members for task_id in sent_now(member)]


def index(store: ResultStore, node: Node, root: str, queue: str, sent: float) -> None:
    """File every task under the workflow's key, with its place in it; the ones published now as sent."""
    published = set(sent_now(node))
    places = links(node)

    def fill(pipe: redis.client.Pipeline) -> None:
        for step in steps(node):
            fields: dict[Any, str | float] = {"name": step.name, "queue": queue, "flow": root}
            fields |= places.get(step.id, {})
            if step.id != root:
                fields["root"] = root
            given: dict[str, str] = {"args": shown(step.args)}
            if step.kwargs:
                given["kwargs"] = shown(step.kwargs)
            call = kept_call(step.args, step.kwargs)
            if call is not None:
                given["call"] = call
            if step.id in published:
                index_task(pipe, step.id, fields | given | {"sent": sent}, sent)
                continue
            # A later step may already have run (its worker's hook stored the arguments it got, the step before's
            # result first): what the signature gave only fills what is not there, so `retry` sends the exact call.
            index_task(pipe, step.id, fields, sent)
            for key, value in given.items():
                pipe.hsetnx(INFO_KEY + step.id, key, value)
            pipe.expire(INFO_KEY + step.id, INDEX_TTL)
        pipe.zadd(FLOW_KEY + root, dict.fromkeys((step.id for step in steps(node)), sent), nx=True)
        pipe.expire(FLOW_KEY + root, INDEX_TTL)

    with store.errors():
        run(store, fill)


def _group_ids(result: Any) -> dict[str, str]:
    """The group id Celery gave each member task, read from the results `apply_async` returned (a chord names
    its header group itself, whatever id the group was given)."""
    from celery.result import GroupResult

    found: dict[str, str] = {}
    seen: set[int] = set()
    pending = [result]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, GroupResult):
            for member in item.results:
                found[member.id] = item.id
                pending.append(member)
        pending.append(getattr(item, "parent", None))
    return found


def _take_group_ids(node: Node, actual: dict[str, str]) -> None:
    """Give each group of the workflow the id its members were sent with."""
    if isinstance(node, Chain):
        for child in node.steps:
            _take_group_ids(child, actual)
    elif isinstance(node, Group):
        first = next((m.id for m in node.members if isinstance(m, Step) and m.id in actual), None)
        if first is not None:
            node.id = actual[first]
        for member in node.members:
            _take_group_ids(member, actual)
        if node.then is not None:
            _take_group_ids(node.then, actual)


def _canvas(app: Celery, node: Node, root: str, queue: str) -> Any:
    from celery import chain, chord, group

    if isinstance(node, Step):
        return app.signature(node.name, args=node.args, kwargs=node.kwargs, task_id=node.id, root_id=root, queue=queue)
    if isinstance(node, Chain):
        return chain(*(_canvas(app, child, root, queue) for child in node.steps), app=app)
    members = group([_canvas(app, member, root, queue) for member in node.members], app=app)
    members.set(task_id=node.id, root_id=root)
    if node.then is None:
        return members
    return chord(members, _canvas(app, node.then, root, queue), app=app)


def _client_app(endpoints: Endpoints) -> Celery:
    """A Celery client app on the stack's broker and backend: JSON only, publishes confirmed, retries bounded.

    Its Redis backend subscribes to nothing: Celery's client subscribes to the channel of every task it sends
    (and of every group member), to resolve results this process never asks for; tcel follows the tasks it
    waits for itself (result_follower.py). The backend's chord support (apply_chord) is Celery's own."""
    from celery import Celery
    from celery.backends.redis import RedisBackend

    from .broker_kind import transport_options
    from .broker_tls import tls_of

    class QuietRedisBackend(RedisBackend):  # type: ignore[misc]
        def on_task_call(self, producer: Any, task_id: str) -> None:
            pass

        def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
            return result

    class ClientApp(Celery):  # type: ignore[misc]
        def _get_backend(self) -> RedisBackend:
            return QuietRedisBackend(app=self, url=self.conf.result_backend)

    app = ClientApp("tcel", broker=endpoints.broker_url, backend=endpoints.backend_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=5,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        broker_transport_options=transport_options(endpoints.broker_url) or {"confirm_publish": True},
        broker_use_ssl=tls_of(endpoints.broker_url),
        redis_socket_timeout=5,
        redis_socket_connect_timeout=5,
    )
    return app


@contextmanager
def _broker_errors(broker_url: str) -> Iterator[None]:
    import redis
    from kombu.exceptions import OperationalError

    try:
        yield
    except (OperationalError, OSError) as exc:
        raise unreachable("broker", mask_url(broker_url), exc, hint=start_or_check("broker")) from None
    except redis.exceptions.RedisError as exc:
        raise ServiceUnreachable(
            f"the backend does not answer while sending a workflow ({exc or type(exc).__name__}); "
            "some of its tasks may have been sent",
            hint=start_or_check("backend"),
        ) from None
