"""The seed's tasks: add(x, y) sleeps, then returns the sum; tsum(numbers) returns the sum."""

import os
import time

from celery import Celery

app = Celery("tasks")
app.config_from_object("celeryconfig")

# Five seconds, as in the seed; tests shorten it through the environment.
ADD_DELAY_SECONDS = float(os.getenv("TCEL_ADD_DELAY", "5"))


@app.task
def add(x, y):
    time.sleep(ADD_DELAY_SECONDS)
    return x + y


@app.task
def tsum(numbers):
    return sum(numbers)
