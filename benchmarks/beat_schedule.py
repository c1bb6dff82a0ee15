"""`tcel beat` on a stack whose beat runs 100 entries (issue 23's target: median at most 0.3 s).

Writes a project with 100 entries (70 intervals of 1 to 70 minutes, 30 crontabs, some with arguments) into a
temporary directory, brings it up with `tcel up --beat`, waits until the schedule holds all 100, then times
each command as a fresh process, alternating them round by round: `tcel beat` (the table), `tcel beat --json`,
and `tcel --help` as the floor (the interpreter and tcel's own start-up). Takes the stack down (--volumes) and
removes its worker image at the end.

    flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/beat_schedule.py [--rounds 30]

Writes benchmarks/results/<time>-beat_schedule.json (every sample, the load averages, the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRIES = 100
RESULTS = Path(__file__).parent / "results"
TCEL = [sys.executable, "-m", "celery_cli"]
APP = """\
from celery import Celery
from celery.schedules import crontab

app = Celery("hundred")
app.conf.timezone = "UTC"
app.conf.beat_schedule = {
    **{f"interval-{n:02}": {"task": "hundred.job", "schedule": 60.0 * n, "args": (n, "x" * n)} for n in range(1, 71)},
    **{f"cron-{n:02}": {"task": "hundred.job", "schedule": crontab(minute=n, hour="*/2"), "kwargs": {"n": n}}
       for n in range(30)},
}


@app.task
def job(*args, **kwargs):
    return len(args)
"""
COMMANDS = {"tcel beat": ["beat"], "tcel beat --json": ["beat", "--json"], "tcel --help": ["--help"]}


def tcel(directory: Path, project: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TCEL, *args, *(["--project-name", project] if args[0] != "--help" else [])],
        cwd=directory,
        capture_output=True,
        text=True,
        check=check,
    )


def timed(directory: Path, project: str, args: list[str]) -> float:
    start = time.perf_counter()
    tcel(directory, project, *args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    directory = Path(tempfile.mkdtemp(prefix="tcel-bench-beat-")) / "hundred"
    directory.mkdir()
    (directory / "hundred.py").write_text(APP)
    project = f"benchbeat{os.getpid()}"
    image = None
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    try:
        up = json.loads(tcel(directory, project, "up", "--beat", "--json").stdout)
        assert up["beat"], up
        deadline = time.monotonic() + 60
        while len(json.loads(tcel(directory, project, "beat", "--json").stdout)["entries"]) < ENTRIES:
            assert time.monotonic() < deadline, "the beat did not store 100 entries within 60 s"
            time.sleep(0.5)
        for args in COMMANDS.values():  # warm-up: byte-compile, fill the page cache
            timed(directory, project, args)
        load_before = os.getloadavg()
        for round_ in range(rounds):
            order = list(COMMANDS.items()) if round_ % 2 == 0 else list(COMMANDS.items())[::-1]
            for name, args in order:
                samples[name].append(round(timed(directory, project, args), 5))
        status = json.loads(tcel(directory, project, "status", "--json").stdout)
        image = next(s["image"] for s in status["services"] if s["service"] == "beat")
    finally:
        tcel(directory, project, "down", "--volumes", check=False)
        if image and str(image).startswith("tcel-worker"):
            subprocess.run(["docker", "image", "rm", str(image)], capture_output=True, check=False)
        shutil.rmtree(directory.parent, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    taken = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    record = {
        "benchmark": "beat_schedule",
        "command": "flock /tmp/tcel-engine.lock .venv/bin/python benchmarks/beat_schedule.py --rounds " + str(rounds),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "taken": taken,
        "entries": ENTRIES,
        "rounds": rounds,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "medians": medians,
        "samples": samples,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{taken}-beat_schedule.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    for name, median in medians.items():
        print(f"{name:<18} median {median * 1000:.0f} ms over {rounds} runs")
    print(f"samples: {path}")


if __name__ == "__main__":
    main()
