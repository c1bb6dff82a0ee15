"""The broker's own ceiling: publish N small persistent messages to a queue with kombu alone, then consume
and ack them all, over one connection. Prints one JSON line with messages per second for the round trip.
Usage: kombu_ceiling.py BROKER_URL COUNT
"""

import json
import sys
import time
import uuid

from kombu import Connection, Consumer, Producer, Queue


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    queue = Queue(f"tcel-bench-{uuid.uuid4().hex[:8]}", durable=False, auto_delete=True)
    received = 0

    def on_message(body, message) -> None:
        nonlocal received
        received += 1
        message.ack()

    with Connection(url) as connection:
        channel = connection.channel()
        bound = queue(channel)
        bound.declare()
        producer = Producer(channel, routing_key=queue.name, serializer="json")
        started = time.time()
        for n in range(count):
            producer.publish({"n": n, "numbers": list(range(10))}, delivery_mode=2)
        with Consumer(channel, [bound], callbacks=[on_message], prefetch_count=100):
            while received < count:
                connection.drain_events(timeout=10)
        seconds = time.time() - started
        bound.delete()
    print(json.dumps({"messages": count, "seconds": seconds, "per_second": count / seconds}))


if __name__ == "__main__":
    main()
