"""`tcel up --broker redis` on a real stack: Redis is the broker (its own container named `broker`, appendonly,
ACL users for the CLI and the workers, `default` off, in its config file), remembered for the project, and the
task commands work on it: call/add/tsum with --wait, a streamed `tsum -` of several chunks, status (queue depth
from the Redis lists, unacked from the unacked hash, the visibility timeout), inspect, control, revoke, purge, env
and down; what only RabbitMQ offers is refused with one line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from celery_cli.credentials import kept, role_user
from tests.conftest import StackProject, make_project
from tests.integration.test_least_privilege import secret_of, worker_container
from tests.integration.test_observe import plain_client, stopped
from tests.integration.test_tasks import wait_for_state


@pytest.fixture(scope="module")
def redis_stack(engine, tmp_path_factory) -> Iterator[StackProject]:
    """One stack with a Redis broker, shared by this module's tests."""
    with make_project(engine, tmp_path_factory.mktemp("redis-broker")) as project:
        result = project.tcel("up", "--broker", "redis")
        assert result.code == 0, result.stderr
        yield project


def broker_client(stack: StackProject):
    import redis

    c = stack.connection
    return redis.Redis(
        host=c.host, port=c.broker_port, username=c.broker_user, password=c.broker_password, decode_responses=True
    )


def queue_view(stack: StackProject, name: str = "celery") -> dict:
    """The queue as `status --json` shows it (exit 11 while a worker is stopped: the stack is degraded)."""
    shown = stack.tcel("status", "--json")
    assert shown.code in (0, 11), shown.stderr
    return next(q for q in json.loads(shown.stdout)["queues"] if q["name"] == name)


def test_the_broker_is_redis_with_appendonly_and_its_users_in_a_file(redis_stack) -> None:
    access = redis_stack.connection
    assert access.broker == "redis" and access.broker_url().startswith("redis://")
    assert kept(_project(redis_stack))["TCEL_BROKER"] == "redis"
    client = broker_client(redis_stack)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()
    broker = redis_stack.engine.containers.get(f"tcel-{redis_stack.name}-broker")
    shown = json.dumps(broker.attrs["Config"])
    assert access.broker_password not in shown  # neither in its environment nor on its command line
    assert f"tcel-{redis_stack.name}-redis-broker-data" in {m.get("Name") for m in broker.attrs["Mounts"]}
    url = redis_stack.tcel("env").stdout
    assert f"CELERY_BROKER_URL='redis://tcel:{access.broker_password}@127.0.0.1:{access.broker_port}/0'" in url


def test_the_brokers_default_user_is_off_and_the_workers_user_is_refused_what_it_never_needs(redis_stack) -> None:
    import redis

    c = redis_stack.connection
    for login in ({"password": c.broker_password}, {}):  # `default` with the admin's password, and anonymous
        with (
            redis.Redis(host=c.host, port=c.broker_port, socket_timeout=3, **login) as default,
            pytest.raises(redis.exceptions.AuthenticationError),
        ):
            default.ping()
    url = secret_of(worker_container(redis_stack), "celery_broker_url")
    assert url.startswith(f"redis://{role_user('worker')}:") and url.endswith("@broker:5672/0")
    with redis.Redis.from_url(url.replace("@broker:5672/", f"@{c.host}:{c.broker_port}/"), socket_timeout=3) as workers:
        assert workers.ping()
        for refused in (workers.flushall, lambda: workers.config_get("*"), lambda: workers.keys("*"), workers.acl_list):
            with pytest.raises(redis.exceptions.NoPermissionError):
                refused()
    assert redis_stack.tcel("add", "2", "3", "--wait").stdout.strip() == "5"  # the workers' own user serves them


def _project(stack: StackProject):
    from celery_cli.settings import resolve_project

    return resolve_project(stack.directory, stack.name)


def test_call_add_and_tsum_wait_for_their_results(redis_stack) -> None:
    assert redis_stack.tcel("tsum", "1", "2", "3", "--wait").stdout.strip() == "6"
    assert redis_stack.tcel("add", "2", "3", "--wait").stdout.strip() == "5"
    assert redis_stack.tcel("call", "tasks.add", "40", "2", "--wait").stdout.strip() == "42"


def test_a_streamed_sum_of_several_chunks_equals_pythons(redis_stack) -> None:
    numbers = range(400_000)  # about 2.6 MB of text: three chunk tasks
    result = redis_stack.tcel("tsum", "-", "--wait", "--json", input="\n".join(map(str, numbers)))
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["result"] == sum(numbers)


def test_a_plain_celery_client_reads_what_tcel_sent_and_sends_what_the_workers_run(redis_stack) -> None:
    client = plain_client(redis_stack)
    try:
        assert client.send_task("tasks.add", args=[20, 22]).get(timeout=30) == 42
    finally:
        client.close()


def test_status_counts_ready_and_unacked_from_redis_and_purge_empties_the_queue(redis_stack) -> None:
    with stopped(redis_stack, "worker-1"):
        assert redis_stack.tcel("purge", "--yes").code == 0
        for n in range(3):
            assert redis_stack.tcel("tsum", str(n), "--quiet").code == 0
        queue = queue_view(redis_stack)
        assert (queue["ready"], queue["visibility_timeout"]) == (3, 3600)
        assert "visibility timeout" in redis_stack.tcel("status").stdout
        assert redis_stack.tcel_json("purge", "--yes")["purged"] == 3
        assert queue_view(redis_stack)["ready"] == 0


def test_a_countdown_beyond_the_visibility_timeout_is_warned_about_and_held_unacked(redis_stack) -> None:
    late = redis_stack.tcel("call", "tasks.add", "1", "2", "--countdown", "4000")
    assert late.code == 0 and "visibility timeout (3600 s)" in late.stderr, late.stderr
    soon = redis_stack.tcel("call", "tasks.add", "1", "2", "--countdown", "60")
    assert soon.code == 0 and "visibility timeout" not in soon.stderr
    deadline = time.monotonic() + 10
    while queue_view(redis_stack)["unacked"] < 2:  # the worker holds both, unacked, until their time comes
        assert time.monotonic() < deadline, queue_view(redis_stack)
        time.sleep(0.5)
    revoked = redis_stack.tcel_json("revoke", late.stdout.strip())
    assert revoked["revoked"] is True and revoked["workers"] == ["celery@worker-1"]


def test_inspect_and_control_reach_the_workers_over_redis(redis_stack) -> None:
    registered = redis_stack.tcel("inspect", "registered")
    assert registered.code == 0 and "tasks.tsum" in registered.stdout, registered.stderr
    limited = redis_stack.tcel("control", "rate-limit", "tasks.add", "100/s")
    assert limited.code == 0 and "acknowledged" in limited.stdout, limited.stderr


def test_revoke_of_a_queued_task_means_it_never_runs(redis_stack) -> None:
    client = plain_client(redis_stack)
    try:
        busy = [client.send_task("tasks.add", args=[0, n]) for n in range(30)]  # 3 s of work for 10 processes
        task_id = redis_stack.tcel("tsum", "42", "--quiet").stdout.strip()
        assert redis_stack.tcel_json("revoke", task_id)["revoked"] is True
        assert [r.get(timeout=60) for r in busy] == list(range(30))
    finally:
        client.close()
    record = wait_for_state(redis_stack, task_id, "REVOKED")
    assert record["state"] == "REVOKED" and record["started"] is None


@pytest.mark.parametrize("option", ["--flower", "--metrics", "--beat", "--swarm"])
def test_what_only_rabbitmq_offers_is_refused_in_one_line(redis_stack, option: str) -> None:
    refused = redis_stack.tcel("up", option)
    assert refused.code == 2 and "RabbitMQ broker only" in refused.stderr and "Traceback" not in refused.stderr


def test_switching_brokers_while_the_stack_runs_is_refused(redis_stack) -> None:
    refused = redis_stack.tcel("up", "--broker", "rabbitmq")
    assert refused.code == 2 and "tcel down" in refused.stderr, refused.stderr
    assert redis_stack.connection.broker == "redis"


def test_a_later_up_and_down_keep_the_broker_remembered(redis_stack) -> None:
    again = redis_stack.tcel("up")  # no --broker: as last started
    assert again.code == 0 and "nothing changed" in again.stderr, again.stderr
    down = redis_stack.tcel("down")
    assert down.code == 0, down.stderr
    assert not redis_stack.containers()
    assert redis_stack.connection.broker == "redis"
