"""Sending tasks to the broker by name, through Celery, with publisher confirms and bounded retries."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from .connection import Endpoints, mask_url
from .errors import ServiceUnreachable

if TYPE_CHECKING:
    from celery import Celery

# Celery retries a publish to a dead broker for a long time by default; a CLI answers within seconds.
CONNECT_TIMEOUT = 2.0
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def new_task_id() -> str:
    return str(uuid.uuid4())


class Sender:
    """One broker connection and producer, reused for every task sent through it."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.app = _client_app(endpoints.broker_url)

    def send(self, name: str, args: list[Any], task_id: str) -> float:
        """Publish the task; return when it was sent, once the broker has confirmed it."""
        import kombu.exceptions

        sent = time.time()
        try:
            with self.app.producer_or_acquire() as producer:
                self.app.send_task(
                    name, args=args, task_id=task_id, producer=producer, retry=True, retry_policy=RETRY_POLICY
                )
        except (kombu.exceptions.OperationalError, OSError) as exc:
            raise ServiceUnreachable(
                f"{name} was not sent: the broker at {mask_url(self.endpoints.broker_url)} did not take it ({exc})",
                hint="start the stack with 'tcel up', or check --broker-url",
            ) from None
        return sent

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _client_app(broker_url: str) -> Celery:
    from celery import Celery

    app = Celery("tcel", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=CONNECT_TIMEOUT,
        broker_connection_retry=False,
        broker_transport_options={"confirm_publish": True},  # a task is "sent" only once the broker has it
    )
    return app
