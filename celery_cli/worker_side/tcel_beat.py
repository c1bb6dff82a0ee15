"""tcel's beat: RedBeat's scheduler, run as `celery -A tcel_worker beat -S tcel_beat:Scheduler`.

RedBeat keeps the schedule in the stack's Redis (a `redbeat::schedule` sorted set of next-run times, a
`redbeat:<name>` hash per entry with its definition and its last run) and holds a lock there while it runs, so
a second beat, from a second `up --beat`, a reload or a restart, waits instead of sending every task twice.
tcel's CLI reads that schedule straight from Redis, without the project's code.

On top of RedBeat, this scheduler
- puts the entry's name on every task it sends, in the header django-celery-beat uses
  (`periodic_task_name`), which tcel's worker hooks record for `tcel results` and `tcel result`;
- pauses again, when it starts, the entries `tcel beat pause` paused (RedBeat rewrites every entry of
  `beat_schedule` as enabled when it starts);
- stores Celery's solar schedules too (RedBeat 2.4's JSON has no solar);
- records each tick (time, host, time zone) in the hash `tcel:beat`, once it holds the lock: `tcel status`
  shows it.

RedBeat and tenacity are the project's own when its image installs them, else the copies tcel puts in
/opt/tcel/lib (celery_cli/stack/worker_image.py).
"""

from __future__ import annotations  # the project's image may run an older Python than tcel

import json
import logging
import socket
import sys
import time
from typing import Any

try:
    import redbeat  # type: ignore[import-not-found]  # noqa: F401
except ImportError:  # the project's image does not install it: tcel's copy
    sys.path.append("/opt/tcel/lib")

from celery.schedules import solar  # type: ignore[import-untyped]
from redbeat import (  # type: ignore[import-not-found]
    RedBeatScheduler,  # type: ignore[import-not-found]
    decoder,
    schedulers,
)
from redbeat.schedulers import get_redis  # type: ignore[import-not-found]

PERIODIC_HEADER = "periodic_task_name"
STATE_KEY = "tcel:beat"
PAUSED_KEY = "tcel:beat:paused"

logger = logging.getLogger(__name__)


class _Encoder(decoder.RedBeatJSONEncoder):  # type: ignore[misc]
    """RedBeat's JSON, and Celery's solar schedule, which RedBeat 2.4 cannot store (the beat would stop)."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, solar):
            return {"__type__": "solar", "event": obj.event, "lat": obj.lat, "lon": obj.lon}
        return super().default(obj)


class _Decoder(decoder.RedBeatJSONDecoder):  # type: ignore[misc]
    def dict_to_object(self, d: dict[str, Any]) -> Any:
        if d.get("__type__") == "solar":
            return solar(d["event"], d["lat"], d["lon"])
        return super().dict_to_object(d)


# RedBeat reads its JSON classes from its module's names when it stores and loads an entry
schedulers.RedBeatJSONEncoder = _Encoder
schedulers.RedBeatJSONDecoder = _Decoder


class Scheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat with the entry's name on each task sent, pauses that survive a restart, and a heartbeat."""

    _recorded_start = False

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self._pause_again()

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        headers = dict(entry.options.get("headers") or {})
        headers.setdefault(PERIODIC_HEADER, entry.name)
        entry.options = {**entry.options, "headers": headers}
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> Any:
        remaining = super().tick(*args, **kwargs)
        self._record()
        return remaining

    def _pause_again(self) -> None:
        client = get_redis(self.app)
        prefix = self.app.redbeat_conf.key_prefix
        for name in client.smembers(PAUSED_KEY):
            key = prefix + name
            raw = client.hget(key, "definition")
            if raw:
                definition = json.loads(raw)
                definition["enabled"] = False
                client.hset(key, "definition", json.dumps(definition))

    def _record(self) -> None:
        """The tick just made, into the stack's Redis; a failure is logged, never raised."""
        state: dict[str, Any] = {"tick": time.time()}
        if not self._recorded_start:
            state.update(
                host=socket.gethostname(),
                started=time.time(),
                timezone=str(self.app.timezone),
                max_interval=self.max_interval,
                lock_timeout=self.lock_timeout,
            )
        try:
            get_redis(self.app).hset(STATE_KEY, mapping=state)
            self._recorded_start = True
        except Exception:  # the heartbeat must never stop the beat
            logger.warning("tcel: cannot record the beat's tick in the stack's Redis", exc_info=True)
