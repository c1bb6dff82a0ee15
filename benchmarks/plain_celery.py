"""The baseline for `tcel bench`: what a user would write with Celery's own API, in one process.

send_task in a loop (a client that has the task's name, not its code, as tcel does), then get() each result.
Prints one JSON line: tasks, seconds, completed/s.
Usage: plain_celery.py BROKER_URL BACKEND_URL COUNT SIZE
"""

import json
import sys
import time

from celery import Celery


def main() -> None:
    broker, backend, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    app = Celery("plain", broker=broker, backend=backend)
    started = time.time()
    results = [app.send_task("tasks.tsum", args=[list(range(n, n + size))]) for n in range(count)]
    sent = time.time()
    values = [result.get(timeout=600) for result in results]
    done = time.time()
    assert len(values) == count
    print(
        json.dumps(
            {
                "tasks": count,
                "send_seconds": sent - started,
                "total_seconds": done - started,
                "completed_per_second": count / (done - started),
            }
        )
    )
    app.close()


if __name__ == "__main__":
    main()
