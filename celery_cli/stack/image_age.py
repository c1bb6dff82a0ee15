"""How old the images a stack runs are: `tcel status` warns about one created more than 90 days ago."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

MAX_IMAGE_AGE_DAYS = 90


class Unit(Protocol):
    """What the warning reads of a row of `tcel status` (base.ServiceStatus)."""

    service: str
    state: str
    image: str
    image_created: datetime | None


def age_days(created: datetime | None, now: datetime | None = None) -> int | None:
    """Whole days since an image was created (None: not known, such as an image the engine no longer has)."""
    if created is None:
        return None
    return max(0, int(((now or datetime.now(UTC)) - created).total_seconds() // 86400))


def image_warnings(services: Iterable[Unit], now: datetime | None = None) -> list[str]:
    """One line per image older than MAX_IMAGE_AGE_DAYS that a running service runs, naming the services."""
    old: dict[str, tuple[int, list[str]]] = {}
    for s in services:
        days = age_days(s.image_created, now)
        if s.state == "running" and days is not None and days > MAX_IMAGE_AGE_DAYS:
            old.setdefault(s.image, (days, []))[1].append(s.service)
    return [
        f"image {image} ({', '.join(dict.fromkeys(users))}) was created {days} days ago; 'tcel up --pull' refreshes it"
        for image, (days, users) in old.items()
    ]
