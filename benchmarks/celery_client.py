"""Baselines a plain Celery user would run, each as one Python process (its start and imports counted, as
tcel's are). Broker and backend from CELERY_BROKER_URL and CELERY_RESULT_BACKEND_URL.

  celery_client.py ping NODE   ping NODE until it answers, as tcel's readiness does: a 0.1 s ping, then 0.05 s
  celery_client.py tsum        send_task("tasks.tsum", [[1, 2, 3]]).get(), print the result
"""

import os
import sys
import time

from celery import Celery


def main() -> None:
    app = Celery("baseline", broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND_URL"])
    if sys.argv[1] == "ping":
        deadline = time.monotonic() + 180
        while not app.control.ping(destination=[sys.argv[2]], timeout=0.1):
            if time.monotonic() > deadline:
                sys.exit(f"{sys.argv[2]} never answered a ping")
            time.sleep(0.05)
    else:
        print(app.send_task("tasks.tsum", args=[[1, 2, 3]]).get(timeout=60))
    app.close()


if __name__ == "__main__":
    main()
