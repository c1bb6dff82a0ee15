# The Celery worker image: Celery 5 on Python, run by a non-root user.
# PYTHON_IMAGE picks the base (tcel passes the one it is configured with).
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}

RUN groupadd --system user && useradd --system --create-home --home-dir /home/user --gid user user
WORKDIR /home/user

# The same pinned versions as tcel's own environment; a change there is a new image (and a fresh layer here).
COPY constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt "celery[redis]"

# The project's own dependencies, when it has a requirements.txt: a layer of their own, so a changed tasks.py
# does not reinstall them, with the Celery versions above still pinned. (Naming constraints.txt again lets
# the pattern match nothing when there is no requirements.txt.)
COPY constraints.txt requirements.tx[t] ./
RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -c constraints.txt -r requirements.txt; fi

# The compose file and tcel override these with credentials; 'broker' and 'backend' are network aliases.
ENV CELERY_BROKER_URL=amqp://broker \
    CELERY_RESULT_BACKEND_URL=redis://backend \
    PYTHONUNBUFFERED=1

USER user
# Without mingle: a lone worker would wait a second at start for neighbours that are not there.
CMD ["celery", "-A", "tasks", "worker", "--loglevel=INFO", "--without-mingle"]

# The code last, as much as .dockerignore lets in (every top-level .py file, and a package directory once
# it has a line there): a changed tasks.py rebuilds this one layer (with the classic builder, each step
# after it costs a container and a commit).
COPY . ./
