"""A beat schedule in words, from the JSON RedBeat stores (with tcel_beat.py's solar): `every 10 s`,
`crontab */5 * * * * (Europe/Paris)`, `solar sunset at 48.86, 2.35`."""

from __future__ import annotations

import json
from typing import Any

UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
RRULE_FREQUENCIES = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly")


def in_words(schedule: dict[str, Any], zone: str | None = None) -> str:
    """The schedule as a person reads it; a crontab with the time zone it runs in (the app's, `zone`)."""
    kind = schedule.get("__type__")
    if kind == "interval":
        return "every " + duration(float(schedule.get("every") or 0))
    if kind == "crontab":
        fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        return f"crontab {' '.join(str(schedule.get(f, '*')) for f in fields)} ({zone or 'the app time zone'})"
    if kind == "solar":
        return f"solar {schedule.get('event')} at {schedule.get('lat')}, {schedule.get('lon')}"
    if kind == "rrule":
        frequency = schedule.get("freq")
        named = RRULE_FREQUENCIES[frequency] if isinstance(frequency, int) and 0 <= frequency < 7 else frequency
        return f"rrule {named}, interval {schedule.get('interval', 1)}"
    return json.dumps(schedule, sort_keys=True)


def duration(seconds: float) -> str:
    """`10 s`, `1.5 s`, `1 min 30 s`, `2 h`, `1 d 6 h`: whole units, largest first; below a minute as is."""
    if seconds < 60:
        return f"{seconds:g} s"
    parts = []
    left = round(seconds)
    for unit, size in UNITS:
        if left >= size:
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts)
