"""tcel: run a Celery stack in Docker and see what it is doing."""

__version__ = "0.1.0"
