#!/bin/sh
# tcel's worker entrypoint, added to every worker image. On Swarm the stack's URLs are Docker secrets (files
# named by CELERY_*_FILE): Celery reads no *_FILE variable, so each is exported into its variable here, for
# any app. Then tcel's worker side (tcel_worker.py) is put on the path, and the worker command runs as PID 1.
for variable in CELERY_BROKER_URL CELERY_RESULT_BACKEND CELERY_RESULT_BACKEND_URL; do
    eval "file=\${${variable}_FILE:-}"
    if [ -n "$file" ] && [ -r "$file" ]; then
        export "$variable=$(cat "$file")"
    fi
done
export PYTHONPATH="/opt/tcel${PYTHONPATH:+:$PYTHONPATH}"
exec "$@"
