"""The seed's tasks: add(x, y) sleeps, then returns the sum; tsum(numbers) returns the sum. tsum_chunk(text)
sums one chunk of a streamed `tcel tsum -`: the numbers as text, parsed here so that the workers, not the
client, do that work."""

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


@app.task
def tsum_chunk(text):
    """The sum of the whitespace-separated numbers in `text`: integers exact, decimals as floats (the client
    has checked every word before sending)."""
    words = text.split()
    if "." not in text and "e" not in text and "E" not in text:
        return sum(map(int, words))
    return sum(float(word) if any(mark in word for mark in ".eE") else int(word) for word in words)
