"""Periodic tasks (issue 23) on the real engine: a project written here with an interval entry every second, a
crontab entry and one added with `add_periodic_task` in `on_after_configure`, run by `tcel up --beat` (RedBeat).
The table, the sends' timing (from the worker's own receive times in tcel's index), `beat run`, pause and resume,
a beat killed and restarted, a second beat started beside the first, and `down`/`up` keeping the schedule's
state. One stack for the module: the tests run in order and each leaves the beat running.

TCEL_TEST_BEAT_UNLOCKED=1 starts the second beat with RedBeat's lock switched off (redbeat_lock_key = None):
test_a_second_beat_does_not_send_twice must then fail, which shows that the lock is what it tests
(TCEL_TEST_BEAT_UNLOCKED=1 pytest tests/integration/test_beat.py -k second_beat)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from celery_cli.stack.specs import BEAT_COMMAND
from tests.conftest import StackProject, make_project
from tests.integration.test_any_project import write

pytestmark = pytest.mark.integration

UP_TIMEOUT = 300  # the first `up` builds the project's image (pip installs Celery in it)
ZONE = "Europe/Paris"
APP = f"""\
from celery import Celery
from celery.schedules import crontab, solar

app = Celery("periodic")
app.conf.timezone = "{ZONE}"
app.conf.beat_schedule = {{
    "every-second": {{"task": "periodic.tick", "schedule": 1.0, "args": (1,)}},
    "five-minutes": {{"task": "periodic.tick", "schedule": crontab(minute="*/5"), "args": (5,)}},
    "sunset": {{"task": "periodic.tick", "schedule": solar("sunset", 48.86, 2.35), "kwargs": {{"n": 0}}}},
}}


@app.on_after_configure.connect
def more_entries(sender, **_):
    sender.add_periodic_task(3600.0, tick.s(60), name="hourly", queue="celery")


@app.task
def tick(n):
    return n
"""
SECOND = "every-second"


@pytest.fixture(scope="module")
def beat_stack(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProject]:
    directory: Path = tmp_path_factory.mktemp("beat") / "periodic"
    directory.mkdir()
    write(directory, {"periodic.py": APP, "requirements.txt": "ephem\n"})  # ephem: Celery's solar schedules
    with make_project(engine, directory) as project:
        images: set[str] = set()
        try:
            up = project.tcel("up", "--beat", "--json", timeout=UP_TIMEOUT)
            assert up.code == 0, up.stderr
            assert json.loads(up.stdout)["beat"] is True
            images = {c.attrs["Config"]["Image"] for c in project.containers()}
            yield project
        finally:
            project.tcel("down", "--volumes")
            for image in images:
                if image.startswith("tcel-worker"):
                    with contextlib.suppress(Exception):
                        engine.images.remove(image)


def schedule(project: StackProject) -> dict:
    return project.tcel_json("beat")


def entries(project: StackProject) -> dict[str, dict]:
    return {e["name"]: e for e in schedule(project)["entries"]}


def wait_for(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s: {what}")


def received(project: StackProject, entry: str = SECOND) -> list[float]:
    """When the workers received each task the entry sent (tcel's index, written by the worker's hook)."""
    import redis

    access = project.connection
    client = redis.Redis.from_url(access.backend_url(), decode_responses=True)
    ids = client.zrange("tcel:tasks", 0, -1)
    pipe = client.pipeline()
    for task_id in ids:
        pipe.hmget(f"tcel:task:{task_id}", ["periodic", "received"])
    times = [float(at) for name, at in pipe.execute() if name == entry and at]
    client.close()
    return sorted(times)


def runs(project: StackProject, entry: str = SECOND) -> int:
    return entries(project)[entry]["total_runs"]


def beat_container(project: StackProject):
    (container,) = [c for c in project.containers() if c.labels.get("io.tcel.service") == "beat"]
    return container


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in pairwise(times)]


def test_the_table_names_every_entry_and_its_schedule(beat_stack: StackProject) -> None:
    wait_for(lambda: runs(beat_stack) >= 3, "the 1 s entry ran 3 times")
    state = schedule(beat_stack)
    assert state["running"] is True and state["timezone"] == ZONE
    shown = {e["name"]: e for e in state["entries"]}
    assert set(shown) == {SECOND, "five-minutes", "hourly", "sunset"}
    assert shown["sunset"]["schedule"] == "solar sunset at 48.86, 2.35" and shown["sunset"]["kwargs"] == {"n": 0}
    assert 0 < shown["sunset"]["next_run"] - time.time() <= 86400 + 3600
    assert shown[SECOND]["schedule"] == "every 1 s" and shown[SECOND]["args"] == [1]
    assert shown["five-minutes"]["schedule"] == f"crontab */5 * * * * ({ZONE})"
    assert shown["hourly"]["schedule"] == "every 1 h" and shown["hourly"]["task"] == "periodic.tick"
    due = datetime.fromtimestamp(shown["five-minutes"]["next_run"], ZoneInfo(ZONE))
    assert due.minute % 5 == 0 and due.second == 0 and due.timestamp() - time.time() <= 300
    # an entry that never ran counts from when the beat first stored it (Celery's default scheduler does the same)
    assert shown["hourly"]["last_run"] is None and shown["hourly"]["total_runs"] == 0
    assert 3500 < shown["hourly"]["next_run"] - time.time() <= 3600
    table = beat_stack.tcel("beat")
    assert table.code == 0, table.stderr
    for text in (SECOND, "five-minutes", "hourly", "every 1 s", "crontab */5 * * * *", "running on beat"):
        assert text in table.stdout + table.stderr


def test_status_and_logs_show_the_beat(beat_stack: StackProject) -> None:
    wait_for(lambda: runs(beat_stack) >= 2, "the beat sends")
    status = beat_stack.tcel("status", "--json")
    view = json.loads(status.stdout)
    (service,) = [s for s in view["services"] if s["service"] == "beat"]
    assert service["state"] == "running" and service["ready"] is True, view
    assert view["beat"]["running"] is True and view["beat"]["next_due"]["name"] == SECOND
    assert time.time() - view["beat"]["last_tick"] < 30
    shown = beat_stack.tcel("status")
    assert "beat: running on beat, last tick" in shown.stdout + shown.stderr
    logs = beat_stack.tcel("logs", "beat", "--tail", "20")
    assert logs.code == 0 and "Sending due task every-second" in logs.stdout


def test_the_second_entry_is_sent_on_time(beat_stack: StackProject) -> None:
    start = time.time()
    wait_for(lambda: received(beat_stack)[-1:] > [start + 10.5], "10 s of sends", 30)
    window = [t for t in received(beat_stack) if start <= t <= start + 10.5]
    assert len(window) >= 9
    # Celery's interval is due one second after the previous run: each send within 0.3 s of that
    assert all(0.7 <= gap <= 1.3 for gap in gaps(window)), gaps(window)


def test_beat_run_sends_the_entry_now_with_its_name(beat_stack: StackProject) -> None:
    before = entries(beat_stack)["hourly"]
    sent = beat_stack.tcel("beat", "run", "hourly", "--wait", "--json")
    assert sent.code == 0, sent.stderr
    record = json.loads(sent.stdout)
    assert record["result"] == 60 and record["periodic"] == "hourly"
    assert entries(beat_stack)["hourly"] == before  # the schedule is left as it was
    listed = beat_stack.tcel_json("results", "-n", "20")
    assert SECOND in {task["periodic"] for task in listed["tasks"]}, listed
    missing = beat_stack.tcel("beat", "run", "nope")
    assert missing.code == 10 and "no beat entry 'nope'" in missing.stderr and "Traceback" not in missing.stderr


def test_pause_and_resume(beat_stack: StackProject) -> None:
    paused = beat_stack.tcel("beat", "pause", SECOND)
    assert paused.code == 0, paused.stderr
    time.sleep(1.5)  # a send already under way when it was paused
    count = len(received(beat_stack))
    assert entries(beat_stack)[SECOND]["enabled"] is False
    assert "paused" in beat_stack.tcel("beat").stdout
    time.sleep(3)
    assert len(received(beat_stack)) == count
    assert beat_stack.tcel("beat", "resume", SECOND).code == 0
    wait_for(lambda: len(received(beat_stack)) >= count + 2, "sends again after resume", 30)


def test_a_killed_beat_restarted_sends_no_entry_twice(beat_stack: StackProject) -> None:
    before = runs(beat_stack)
    beat_container(beat_stack).kill(signal="SIGKILL")
    killed_at = time.time()
    assert beat_stack.tcel("up").code == 0  # starts the stopped beat; it waits for the dead one's lock to expire
    wait_for(lambda: runs(beat_stack) >= before + 3, "sends after the restart", 90)
    times = received(beat_stack)
    # one send per due time: never two within half a second; the runs missed while it was down are not caught
    # up (Celery's interval: one send when it is late, then every second from there)
    assert min(gaps(times)) >= 0.5, sorted(gaps(times))[:5]
    after = [t for t in times if t > killed_at]
    assert min(gaps(after)) >= 0.5


def test_a_second_beat_does_not_send_twice(beat_stack: StackProject, engine) -> None:
    first = beat_container(beat_stack)
    command = list(BEAT_COMMAND)
    if os.environ.get("TCEL_TEST_BEAT_UNLOCKED") == "1":
        code = (
            "import tcel_worker; tcel_worker.app.conf.redbeat_lock_key = None; "
            "tcel_worker.app.Beat(scheduler='tcel_beat:Scheduler', loglevel='INFO').run()"
        )
        command = ["python", "-c", code]
    second = engine.containers.run(
        first.attrs["Config"]["Image"],
        command,
        name=f"{first.name}-second",
        labels={"io.tcel.project": beat_stack.name, "io.tcel.service": "test-second-beat"},
        environment=beat_stack.connection.inside_network(),
        network=f"tcel-{beat_stack.name}",
        detach=True,
    )
    try:
        start = time.time()
        wait_for(lambda: received(beat_stack)[-1:] > [start + 10.5], "10 s of sends", 30)
        window = [t for t in received(beat_stack) if start <= t <= start + 10.5]
        assert len(window) <= 11, f"{len(window)} sends of a 1 s entry in 10 s"
        assert min(gaps(window)) >= 0.5
        # Two beats sharing RedBeat's state mostly take turns rather than double every send (each reads the
        # last run the other wrote), so the count alone would not show a second beat: the second one's own log
        # says whether it ever sent. With the lock it waits for it, and sends nothing.
        log = second.logs().decode(errors="replace")
        assert "beat: Starting" in log
        assert "Sending due task" not in log, log[-2000:]
    finally:
        second.remove(force=True)


def test_down_and_up_keep_the_schedule_state(beat_stack: StackProject) -> None:
    down = beat_stack.tcel("down")
    assert down.code == 0, down.stderr
    assert not [c for c in beat_stack.containers() if c.labels.get("io.tcel.service") == "beat"]
    up = beat_stack.tcel("up", "--json", timeout=UP_TIMEOUT)  # --beat is remembered
    assert up.code == 0, up.stderr
    assert json.loads(up.stdout)["beat"] is True
    shown = entries(beat_stack)
    assert shown[SECOND]["total_runs"] > 20 and shown["hourly"]["next_run"] - time.time() > 3000
