"""The broker's own publish-with-confirms ceiling, the anchor for `tcel bench`'s send rate.

A tight py-amqp publisher (py-amqp is kombu's and Celery's AMQP client) at its best: one message built once
with Celery's own `as_task_v2` (the same task, arguments and size as `tcel bench` sends), published COUNT times
as a persistent message to a durable queue of its own, with publisher confirms collected in a window as they
come (acks with `multiple`), as fast as the broker confirms. Celery's and kombu's `confirm_publish` wait for
each confirm before the next publish; this does not. Each window size is tried, with and without Linux's
TCP_CORK on the socket (tcel corks while it publishes; a py-amqp user would not, but the anchor gets it too),
and the best rate is kept. With --queue celery it publishes into the workers' own queue while they consume
(the conditions `tcel bench` sends under; the workers then run those tasks, and each setting waits, untimed,
until they have taken them all, so that each starts from an empty queue as `tcel bench` does); by default into
a durable queue of its own that nobody consumes, deleted afterwards.
Prints one JSON line. Usage: kombu_ceiling.py BROKER_URL COUNT [--queue celery] [--windows W ...]
"""

import argparse
import json
import socket
import time
import uuid
from urllib.parse import unquote, urlsplit

import amqp
from celery import Celery


def publish(
    channel: amqp.Channel,
    connection: amqp.Connection,
    message: amqp.Message,
    queue: str,
    count: int,
    window: int,
    cork: bool,
) -> float:
    """Publish `count` copies with at most `window` unconfirmed; return messages confirmed per second."""
    confirmed = 0
    sock = connection.transport.sock

    def ack(tag: int, multiple: bool) -> None:
        nonlocal confirmed
        confirmed = tag if multiple else confirmed + 1

    channel.events["basic_ack"].add(ack)
    started = time.perf_counter()
    for published in range(1, count + 1):
        if cork:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        channel.basic_publish(message, exchange="", routing_key=queue)
        if published - confirmed >= window:
            if cork:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            while published - confirmed >= window:
                connection.drain_events(timeout=10)
    if cork:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    while confirmed < count:
        connection.drain_events(timeout=10)
    seconds = time.perf_counter() - started
    channel.events["basic_ack"].discard(ack)
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--queue", help="publish into this (existing, consumed) queue instead of one of its own")
    parser.add_argument("--windows", type=int, nargs="*", default=[300, 1000, 3000])
    args = parser.parse_args()
    task = Celery(set_as_current=False).amqp.as_task_v2(str(uuid.uuid4()), "tasks.tsum", [list(range(10))])
    body = json.dumps(task.body)
    message = amqp.Message(
        body,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        priority=0,
        correlation_id=task.headers["id"],
        reply_to="",
        application_headers=task.headers,
    )
    parts = urlsplit(args.url)
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username),
        password=unquote(parts.password),
        virtual_host=unquote(parts.path[1:]) or "/",
    )
    connection.connect()
    queue = args.queue or f"tcel-ceiling-{uuid.uuid4().hex[:8]}"
    rates = {}
    try:
        for window in args.windows:
            for cork in (False, True):
                channel = connection.channel()  # a fresh channel each time: delivery tags count from 1
                channel.confirm_select()
                channel.queue_declare(queue, durable=True, auto_delete=False, passive=bool(args.queue))
                rates[(window, cork)] = publish(channel, connection, message, queue, args.count, window, cork)
                if args.queue:  # each setting starts from an empty queue: wait (untimed) until the consumers took all
                    while channel.queue_declare(queue, passive=True).message_count:
                        time.sleep(0.5)
                else:
                    channel.queue_purge(queue)
                channel.close()
    finally:
        if not args.queue:
            connection.channel().queue_delete(queue)
        connection.close()
    best = max(rates, key=rates.get)
    print(
        json.dumps(
            {
                "messages": args.count,
                "published": args.count * len(rates),
                "per_second": rates[best],
                "best": {"window": best[0], "cork": best[1]},
                "all": [{"window": w, "cork": c, "per_second": round(r, 1)} for (w, c), r in rates.items()],
            }
        )
    )


if __name__ == "__main__":
    main()
