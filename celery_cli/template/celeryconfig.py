"""Celery settings for the worker, read from the environment as in the seed."""

import os

imports = ("tasks",)
broker_url = os.getenv("CELERY_BROKER_URL", "amqp://")
result_backend = os.getenv("CELERY_RESULT_BACKEND_URL", "redis://")

# The seed started the worker with -c 10.
worker_concurrency = int(os.getenv("CELERY_WORKER_CONCURRENCY", "10"))

# JSON only: a broker message can never make the worker unpickle code.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

broker_connection_retry_on_startup = True
