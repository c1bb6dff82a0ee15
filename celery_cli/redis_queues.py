"""A Redis broker's task queues, read the way kombu's Redis transport keeps them: each queue a list (one more per
priority step), and every message delivered but not yet acked in the `unacked` hash, with when it was delivered
in the `unacked_index` sorted set (the visibility set: a message older there than the visibility timeout is
handed back to its queue)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .errors import unreachable

if TYPE_CHECKING:
    from .credentials import Credentials

PRIORITY_SEP = "\x06\x16"  # kombu's separator between a queue's name and its priority step
PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's default steps: priority 0-9 land on one of these lists
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
UNACKED_READ_MAX = 10_000  # past this many held messages, they are counted, not read by queue


def priority_lists(name: str) -> list[str]:
    """The lists one queue is kept in: its own name for priority 0, then one per further step."""
    return [name, *(f"{name}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS[1:])]


def redis_queues(credentials: Credentials, names: list[str], timeout: float = 0.5) -> list[tuple[str, int, int]]:
    """(name, ready, unacked) of each named queue: ready from the lengths of its lists, unacked from the unacked
    hash (by the queue each message came from)."""
    import redis

    where = f"{credentials.host}:{credentials.broker_port}"
    client = redis.Redis(
        host=credentials.host,
        port=credentials.broker_port,
        username=credentials.broker_user,
        password=credentials.broker_password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                for key in priority_lists(name):
                    pipe.llen(key)
            pipe.hlen(UNACKED)
            lengths = pipe.execute()
        held = _held_by_queue(client, lengths[-1])
    except redis.exceptions.RedisError as exc:
        raise unreachable("broker", where, exc) from None
    finally:
        client.close()
    steps = len(PRIORITY_STEPS)
    found = []
    for index, name in enumerate(names):
        ready = sum(lengths[index * steps : (index + 1) * steps])
        found.append((name, ready, held.get(name, 0)))
    return found


def _held_by_queue(client: object, count: int) -> dict[str, int]:
    """How many unacked messages came from each queue (each entry is [message, exchange, routing key])."""
    if count == 0 or count > UNACKED_READ_MAX:
        return {}
    held: dict[str, int] = {}
    for raw in client.hvals(UNACKED):  # type: ignore[attr-defined]
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        held[routing_key] = held.get(routing_key, 0) + 1
    return held
