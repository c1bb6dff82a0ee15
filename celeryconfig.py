"""Celery settings for the worker, read from the environment as in the seed."""

import os

# task_index keeps the list of recent tasks that `tcel results` shows.
imports = ("tasks", "task_index")
broker_url = os.getenv("CELERY_BROKER_URL", "amqp://")
result_backend = os.getenv("CELERY_RESULT_BACKEND_URL", "redis://")

# The seed started the worker with -c 10.
worker_concurrency = int(os.getenv("CELERY_WORKER_CONCURRENCY", "10"))

# JSON only: a broker message can never make the worker unpickle code.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

broker_connection_retry_on_startup = True

# Store STARTED, and the task's name, args and worker with its result, so `tcel result` can show them.
task_track_started = True
result_extended = True
