"""Start-up cost of an editable install: `python -c pass`, `python -m celery_cli --help` and `tcel --help` in each
of several venvs, alternated round by round (the order reversed every other round), wall clock per process.

Each venv holds tcel installed in editable mode from the same tree, one way each, for example:

    python3 -m venv /tmp/v-compat && /tmp/v-compat/bin/pip install -c constraints.txt -e ".[test]" \\
        --config-settings editable_mode=compat        # with setuptools as the build backend; also lenient, strict
    python3 -m venv /tmp/v-hatch && /tmp/v-hatch/bin/pip install -c constraints.txt -e ".[test]"   # hatchling

    python3 benchmarks/editable_startup.py compat=/tmp/v-compat hatchling=/tmp/v-hatch [--rounds 30]

Writes benchmarks/results/<time>-editable_startup.json (every sample, the load averages, the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "python -c pass": ["bin/python", "-c", "pass"],
    "python -m celery_cli --help": ["bin/python", "-m", "celery_cli", "--help"],
    "tcel --help": ["bin/tcel", "--help"],
}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venvs", nargs="+", metavar="LABEL=VENV")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    venvs = dict(item.split("=", 1) for item in args.venvs)
    for venv in venvs.values():  # warm-up: byte-compile, fill the page cache
        for argv in COMMANDS.values():
            timed([os.path.join(venv, argv[0]), *argv[1:]])
    load_before = os.getloadavg()
    samples: dict[str, dict[str, list[float]]] = {command: {label: [] for label in venvs} for command in COMMANDS}
    for round_ in range(args.rounds):
        order = list(venvs.items()) if round_ % 2 == 0 else list(venvs.items())[::-1]
        for command, argv in COMMANDS.items():
            for label, venv in order:
                samples[command][label].append(round(timed([os.path.join(venv, argv[0]), *argv[1:]]), 5))
    medians = {command: {label: statistics.median(s) for label, s in by.items()} for command, by in samples.items()}
    taken = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    record = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "taken": taken,
        "command": " ".join(["benchmarks/editable_startup.py", *sys.argv[1:]]),
        "rounds": args.rounds,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "medians": medians,
        "samples": samples,
    }
    out = Path(__file__).resolve().parent / "results" / f"{taken}-editable_startup.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    for command, by in medians.items():
        for label, median in by.items():
            fastest = min(samples[command][label])
            print(f"{command:30} {label:20} median {median * 1000:6.1f} ms  min {fastest * 1000:6.1f} ms")
    print(f"samples: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
