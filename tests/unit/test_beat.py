"""The beat's schedule without an engine: schedules in words, RedBeat's JSON read back, the table, the header a
`beat run` task carries, the files the worker image gets for the beat."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from celery_cli.beat_schedule import BeatState, entry, moment
from celery_cli.beat_tables import schedule_table
from celery_cli.schedule_words import duration, in_words
from celery_cli.tables import beat_line
from celery_cli.task_call import TaskCall
from celery_cli.task_message import headers


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 s"), (1.5, "1.5 s"), (10, "10 s"), (60, "1 min"), (90, "1 min 30 s"), (3600, "1 h"), (108000, "1 d 6 h")],
)
def test_durations_in_words(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_schedules_in_words() -> None:
    assert in_words({"__type__": "interval", "every": 10.0, "relative": False}) == "every 10 s"
    cron = {"__type__": "crontab", "minute": "*/5", "hour": "*", "day_of_week": "*", "day_of_month": "*"}
    assert in_words({**cron, "month_of_year": "*"}, "Europe/Paris") == "crontab */5 * * * * (Europe/Paris)"
    weekly = {**cron, "minute": "0", "hour": "7", "day_of_week": "mon-fri", "month_of_year": "*"}
    assert in_words(weekly, None) == "crontab 0 7 * * mon-fri (the app time zone)"
    solar = {"__type__": "solar", "event": "sunset", "lat": 48.86, "lon": 2.35}
    assert in_words(solar) == "solar sunset at 48.86, 2.35"
    assert in_words({"__type__": "rrule", "freq": 3, "interval": 2}) == "rrule daily, interval 2"
    assert in_words({"__type__": "other", "x": 1}) == '{"__type__": "other", "x": 1}'


def redbeat_json(schedule: dict, last: dict | None = None, runs: int = 0, enabled: bool = True) -> tuple[str, str]:
    definition = {
        "name": "e",
        "task": "t.f",
        "args": [1, "x"],
        "kwargs": {"k": 2},
        "options": {"queue": "q"},
        "schedule": schedule,
        "enabled": enabled,
    }
    return json.dumps(definition), json.dumps({"last_run_at": last, "total_run_count": runs})


LAST = {
    "__type__": "datetime",
    "year": 2026,
    "month": 1,
    "day": 2,
    "hour": 3,
    "minute": 4,
    "second": 5,
    "microsecond": 500000,
    "timezone": "UTC",
}


def test_redbeat_datetimes_read_back() -> None:
    assert moment(LAST) == datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC).timestamp()
    paris = {**LAST, "timezone": "Europe/Paris"}
    assert moment(paris) == moment(LAST) - 3600
    assert moment({**LAST, "timezone": 7200.0}) == moment(LAST) - 7200
    assert moment(None) is None


def test_an_interval_entry_is_next_due_one_interval_after_its_last_run() -> None:
    last = moment(LAST)
    assert last is not None
    read = entry(*redbeat_json({"__type__": "interval", "every": 10.0}, LAST, runs=3), score=int(last) + 10)
    assert (read.name, read.task, read.args, read.kwargs, read.total_runs) == ("e", "t.f", [1, "x"], {"k": 2}, 3)
    assert read.last_run == last and read.next_run == last + 10


def test_a_crontab_entry_is_due_on_its_minute_and_a_new_entry_has_no_last_run() -> None:
    # RedBeat truncates a due time computed a little early: 12:04:59 for 12:05:00
    cron = {"__type__": "crontab", "minute": "*/5"}
    read = entry(*redbeat_json(cron, LAST), score=datetime(2026, 1, 2, 3, 4, 59, tzinfo=UTC).timestamp())
    assert read.next_run == datetime(2026, 1, 2, 3, 5, tzinfo=UTC).timestamp()
    assert read.last_run is None  # RedBeat stores the time it first saw the entry; it never ran


def test_the_table_and_the_beat_line() -> None:
    from rich.console import Console

    last = moment(LAST)
    assert last is not None
    every = entry(*redbeat_json({"__type__": "interval", "every": 1.0}, LAST, runs=5), score=int(last) + 1)
    paused = entry(*redbeat_json({"__type__": "crontab", "minute": "0"}, enabled=False), score=int(last))
    state = BeatState([every, paused], locked=True, last_tick=last + 0.25, host="beat", timezone="UTC")
    console = Console(width=200, record=True)
    console.print(schedule_table("beat", state))
    text = console.export_text()
    assert "every 1 s" in text and "crontab 0 * * * * (UTC)" in text and "paused" in text and "never" in text
    assert '1, "x", k=2' in text
    assert beat_line(state, last + 1.0).startswith("running on beat, last tick 0.8s ago; next: e at ")
    assert state.as_dict()["entries"][1]["next_run"] is None
    stopped = BeatState([], locked=False, last_tick=None, host=None, timezone=None)
    assert beat_line(stopped, 0) == "not running (no beat holds the lock); nothing due"


def test_a_beat_run_task_carries_its_entry_name() -> None:
    call = TaskCall("t.f", [1], periodic="nightly")
    assert headers(call, "id", 0.0, "here")["periodic_task_name"] == "nightly"
    assert "periodic_task_name" not in headers(TaskCall("t.f"), "id", 0.0, "here")


def test_the_worker_image_carries_the_beat_and_redbeat(tmp_path) -> None:
    from celery_cli.project_app import find_app
    from celery_cli.settings import Project
    from celery_cli.stack.worker_image import WorkerImage

    (tmp_path / "proj.py").write_text("from celery import Celery\napp = Celery('proj')\n")
    image = WorkerImage(Project("p", tmp_path), find_app(tmp_path))
    files = image.read().files
    assert ".tcel/worker/tcel_beat.py" in files
    assert ".tcel/worker/lib/redbeat/schedulers.py" in files and ".tcel/worker/lib/tenacity/__init__.py" in files
    assert not [name for name in files if "__pycache__" in name]


def test_beat_run_sends_the_entrys_queue_expires_and_priority_and_names_what_it_does_not_apply() -> None:
    from celery_cli.beat_schedule import BeatEntry, entry_call

    entry = BeatEntry(
        "nightly",
        "proj.tasks.report",
        [1],
        {"full": True},
        options={"queue": "reports", "expires": 30, "priority": 7, "exchange": "x", "routing_key": "r"},
    )
    call, left = entry_call(entry)
    assert (call.name, call.args, call.kwargs, call.queue) == ("proj.tasks.report", [1], {"full": True}, "reports")
    assert (call.expires, call.priority, call.periodic) == (30.0, 7, "nightly")
    assert left == ["exchange", "routing_key"]
    plain, none_left = entry_call(BeatEntry("e", "t"))
    assert (plain.queue, plain.expires, plain.priority, none_left) == ("celery", None, None, [])
    dated, dated_left = entry_call(BeatEntry("d", "t", options={"expires": {"__type__": "datetime"}}))
    assert dated.expires is None and dated_left == ["expires"]
