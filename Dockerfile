# The Celery worker image: Celery 5 on Python, run by a non-root user.
# PYTHON_IMAGE picks the base (tcel passes the one it is configured with).
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}

RUN groupadd --system user && useradd --system --create-home --home-dir /home/user --gid user user
WORKDIR /home/user

# The same pinned versions as tcel's own environment; a change there is a new image (and a fresh layer here).
COPY constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt "celery[redis]"

COPY celeryconfig.py tasks.py worker_hooks.py ./

# The compose file and tcel override these with credentials; 'broker' and 'backend' are network aliases.
ENV CELERY_BROKER_URL=amqp://broker \
    CELERY_RESULT_BACKEND_URL=redis://backend \
    PYTHONUNBUFFERED=1

USER user
# Without mingle: a lone worker would wait a second at start for neighbours that are not there.
CMD ["celery", "-A", "tasks", "worker", "--loglevel=INFO", "--without-mingle"]
