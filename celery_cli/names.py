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
MAX_TASKS = 10_000  # how many tasks the index keeps (the workers' TCEL_INDEX_MAX_TASKS may change theirs)
# The ids of a streamed sum's chunk tasks, a list under its final task's id (tcel writes it; the index's trim
# deletes it with the task's hash).
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
# The autoscaler's newest decision and what it saw (a JSON string), read by `tcel status`
AUTOSCALE_KEY = "tcel:autoscale"
INDEX_TTL = 86400  # Celery's default result_expires
# The index keeps a task's exact args and kwargs (for `tcel retry`) when their JSON is at most this long.
CALL_KEPT_MAX = 65536

# The index's one write, in Redis: add the task (ARGV[2] its score, '' to update only a task indexed), trim what
# is older than ARGV[3] or past the newest ARGV[4] tasks (at most 100 a call, so that no call blocks Redis
# for long), deleting each dropped task's hash and chunk list, then write the fields ARGV[8..] to the task's hash
# if it is (still) indexed. KEYS: the index, the task's hash; ARGV[1] the id, ARGV[5] the ttl, ARGV[6..7] the
# hash and chunk-list prefixes. Standalone Redis only (it names keys it computes), as Celery's Redis backend is.
INDEX_SCRIPT = """
local index, info, id = KEYS[1], KEYS[2], ARGV[1]
if ARGV[2] ~= '' then
  redis.call('ZADD', index, 'NX', ARGV[2], id)
  local batch = 100
  local function drop(ids)
    for _, old in ipairs(ids) do
      redis.call('ZREM', index, old)
      redis.call('DEL', ARGV[6] .. old, ARGV[7] .. old)
    end
  end
  drop(redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch))
  local over = redis.call('ZCARD', index) - tonumber(ARGV[4])
  if over > 0 then drop(redis.call('ZRANGE', index, 0, math.min(over, batch) - 1)) end
  redis.call('EXPIRE', index, ARGV[5])
end
if not redis.call('ZSCORE', index, id) then return 0 end
if #ARGV > 7 then redis.call('HSET', info, unpack(ARGV, 8)) end
redis.call('EXPIRE', info, ARGV[5])
return 1
"""
# The script as the Redis function tcel_index (library tcel), which the CLI loads at `up` (FUNCTION LOAD, kept in
# Redis's data) and which the workers only call (FCALL): their ACL user may run no Lua of its own.
INDEX_FUNCTION = "tcel_index"
INDEX_LIBRARY = "#!lua name=tcel\nredis.register_function('tcel_index', function(KEYS, ARGV)" + INDEX_SCRIPT + "end)\n"

# Labels on everything tcel makes; nothing without the project label is ever touched.
LABEL_PROJECT = "io.tcel.project"
LABEL_SERVICE = "io.tcel.service"
LABEL_NUMBER = "io.tcel.number"
LABEL_FILES = "io.tcel.files"  # a digest of the files (logins) a service was made with
LABEL_IMAGE = "io.tcel.image"
LABEL_QUEUES = "io.tcel.queues"  # on workers: the queues they were started to consume ("" for Celery's default)
LABEL_CHILD_LIMITS = "io.tcel.child-limits"  # on workers: "TASKS,KIB", their pool processes' limits (0: none)
WORKER_IMAGE_KIND = "worker"  # the value of LABEL_IMAGE on worker images
FLOWER_IMAGE_KIND = "flower"  # ... and on Flower images
METRICS_IMAGE_KIND = "metrics"  # ... and on the exporter's images
LABEL_AUTOSCALE = "io.tcel.autoscale"  # on the autoscaler: "MIN:MAX:THRESHOLD:COOLDOWN", replaced when it changes
LABEL_BROKER_IMAGE = "io.tcel.broker-image"  # on the broker's volume: what wrote its data
LABEL_BROKER_VERSION = "io.tcel.rabbitmq-version"

SERVICES = ("broker", "backend", "worker", "beat", "flower", "metrics", "autoscaler")
BROKER_PORT = 5672  # inside the stack's network
AMQPS_PORT = 5671  # the broker's, when the stack serves TLS (AMQPS only)
BACKEND_PORT = 6379
FLOWER_PORT = 5555
METRICS_PORT = 9808  # the exporter's port, inside the stack and (by default) on the host
# Where a service of a stack that serves TLS finds the authority's certificate (a file put in before start, a
# Docker secret on Swarm)
INSIDE_CA_FILE = "/run/secrets/tcel_ca.crt"
