"""Names the client and the worker must agree on: the task queue, the Redis keys, the Docker labels.

The worker image does not install tcel, so `worker_hooks.py` keeps its own copy of the Redis index keys;
`tests/unit/test_names.py` checks that the two agree.
"""

# Celery's default queue. Celery binds every queue it makes to a direct exchange of the queue's name with the
# queue's name as routing key, and publishes through the default exchange; tcel declares and sends the same way.
QUEUE = "celery"
EXCHANGE = "celery"
ROUTING_KEY = "celery"

# The largest message the broker takes: RabbitMQ 4's default, which tcel also writes into its broker's
# configuration so that every RabbitMQ version it runs agrees; the client refuses bigger ones before sending.
MAX_MESSAGE_SIZE = 16 * 2**20

# Celery's Redis backend stores a task's result under this prefix and publishes it on a channel of that name.
RESULT_KEY = "celery-task-meta-"
# The index the worker's hooks keep: task ids by time, and a small hash per task.
INDEX_KEY = "tcel:tasks"
INFO_KEY = "tcel:task:"
# The ids of a streamed sum's chunk tasks, a list under its final task's id (only tcel reads and writes it).
JOB_KEY = "tcel:job:"
# A workflow's tasks (chain, group, chord), a sorted set under its root's id (else its group's), kept by the
# workers' hooks and by tcel when it sends one: `result --tree` reads the whole workflow from any of its ids.
FLOW_KEY = "tcel:flow:"
# Failed tasks, newest last: a sorted set by time whose members are small JSON entries (id, name, exception,
# message, worker) kept by the workers' hooks, so that grouping failures reads one key, never every result.
FAILED_KEY = "tcel:failed"
MAX_FAILURES = 100_000
# The header naming the beat entry that sent a task (django-celery-beat's, which tcel's beat and `beat run` use)
PERIODIC_HEADER = "periodic_task_name"
INDEX_TTL = 86400  # Celery's default result_expires
# The index keeps a task's exact args and kwargs (for `tcel retry`) when their JSON is at most this long.
CALL_KEPT_MAX = 65536

# Labels on everything tcel makes; nothing without the project label is ever touched.
LABEL_PROJECT = "io.tcel.project"
LABEL_SERVICE = "io.tcel.service"
LABEL_NUMBER = "io.tcel.number"
LABEL_IMAGE = "io.tcel.image"
LABEL_QUEUES = "io.tcel.queues"  # on workers: the queues they were started to consume ("" for Celery's default)
WORKER_IMAGE_KIND = "worker"  # the value of LABEL_IMAGE on worker images
FLOWER_IMAGE_KIND = "flower"  # ... and on Flower images
METRICS_IMAGE_KIND = "metrics"  # ... and on the exporter's images
LABEL_BROKER_IMAGE = "io.tcel.broker-image"  # on the broker's volume: what wrote its data
LABEL_BROKER_VERSION = "io.tcel.rabbitmq-version"

SERVICES = ("broker", "backend", "worker", "beat", "flower", "metrics")
BROKER_PORT = 5672  # inside the stack's network
BACKEND_PORT = 6379
FLOWER_PORT = 5555
METRICS_PORT = 9808  # the exporter's port, inside the stack and (by default) on the host
