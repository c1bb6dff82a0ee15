"""Celery settings for the worker, read from the environment as in the seed."""

import os

# worker_hooks keeps the list of recent tasks that `tcel results` shows, and starts the worker quickly.
imports = ("tasks", "worker_hooks")


def _url(variable, default):
    """The URL in the file VARIABLE_FILE names (a Docker secret, as `tcel up --swarm` passes them: Celery has no
    *_FILE convention of its own), else the variable, else the default."""
    path = os.getenv(f"{variable}_FILE")
    if path:
        with open(path) as secret:
            return secret.read().strip()
    return os.getenv(variable, default)


broker_url = _url("CELERY_BROKER_URL", "amqp://")
result_backend = _url("CELERY_RESULT_BACKEND_URL", "redis://")

# The seed started the worker with -c 10.
worker_concurrency = int(os.getenv("CELERY_WORKER_CONCURRENCY", "10"))

# JSON only: a broker message can never make the worker unpickle code.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

broker_connection_retry_on_startup = True
# AMQP heartbeats every 10 s (Celery's default asks for 120 s): after a network cut the broker lets the worker's
# old connection go within about 20 s instead of minutes; until it does, that connection holds the worker's
# exclusive control queue and the reconnecting worker is refused (RESOURCE_LOCKED) and stops consuming.
broker_heartbeat = 10
# And a worker that reconnects before the broker let its old connection go is refused that control queue
# (RESOURCE_LOCKED, a channel error): by default Celery's consumer then stops for good, the worker alive but
# consuming nothing (seen after a network cut that moved the worker to another address). Retrying channel
# errors as it retries connection errors, it connects again until the broker has let go.
broker_channel_error_retry = True
# After such a cut the worker's old backend connections answer nothing either (when it came back on another
# address, they never will): Celery's default 120 s read timeout on them held the worker's consumer (its
# task-received hook writes to Redis) and its pool processes (storing results) for two minutes. A Redis command
# of the worker takes milliseconds; past 10 s the connection is given up and, as every backend write is retried
# (below), the write made again on a new one.
redis_socket_timeout = 10
redis_socket_connect_timeout = 5

# Nothing lost when a worker dies mid-task: acknowledge a task only after it ran, give it back to the queue
# when its process is killed, and take one message per process at a time (so a dead worker holds no backlog).
# RabbitMQ 4.3 applies no consumer timeout to classic queues (Celery's default queue is one). RabbitMQ up to
# 4.2 closes a channel holding an unacknowledged message for over 30 minutes (consumer_timeout): there, a task
# that may run longer needs a higher consumer_timeout on the broker.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Results are published to Redis with retries; a task's result is written once per state.
result_backend_always_retry = True
result_backend_max_retries = 10

# Store STARTED, so `tcel result` and `--wait` can show a task running.
task_track_started = True
# Not Celery's extended results: they copy the task's whole args and kwargs into the stored result and into
# every state message published on its channel (a 5-million-number tsum made a 50 MB message, and Redis drops
# a subscriber whose output buffer overruns). worker_hooks' index keeps the name, worker, queue and a bounded
# view of the arguments instead, for any task a worker receives, whoever sent it.
result_extended = False

# Task events (received, started, succeeded...) from the first task on, for Flower (`tcel up --flower`) and
# `celery events`: Flower would switch them on itself, but only every 5 s, so the tasks of a worker that just
# started (up, scale, a reload) would be missed. Three small transient messages per task, which RabbitMQ drops
# when nothing listens; no cost stood out of the noise in `tcel bench` (README, Flower).
worker_send_task_events = True
