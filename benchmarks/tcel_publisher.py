"""tcel's own publisher alone, under the ceiling's conditions (benchmarks/kombu_ceiling.py): COUNT tsum tasks
of 10 numbers sent with `Sender.send_many` (its default window, messages built per task as `tcel bench` does)
into a durable queue of its own that nobody consumes, deleted afterwards. Prints one JSON line with tasks
confirmed per second, from the first publish to the last confirm.
Usage: tcel_publisher.py BROKER_URL COUNT
"""

import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from celery_cli.call import TaskCall
from celery_cli.endpoints import Endpoints
from celery_cli.publisher import Sender, new_task_id
from celery_cli.throughput import task_args


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    queue = f"tcel-publisher-{uuid.uuid4().hex[:8]}"
    sent: list[float] = []
    with Sender(Endpoints(url, None)) as sender:
        calls = ((TaskCall("tasks.tsum", task_args("tsum", 10, n), queue=queue), new_task_id()) for n in range(count))
        sender.send_many(calls, lambda task_id, at: sent.append(at))
        done = time.time()
        sender._channel.queue_delete(queue)
        sender._channel.exchange_delete(queue)
    print(json.dumps({"messages": count, "per_second": count / (done - min(sent))}))


if __name__ == "__main__":
    main()
