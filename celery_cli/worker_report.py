"""What the stack's workers really run, as tcel's worker side reports it into the stack's Redis once a worker is
ready (celery_cli/worker_side/tcel_worker.py): Celery's version, where their broker and backend are, and the
safe settings the project's own configuration keeps; and what `up` and `--wait` say about it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .project_app import ProjectApp

REPORT_KEY = "tcel:workers"
# where the stack's services are from inside its network (their aliases)
STACK_BROKER_HOST = "broker"
STACK_BACKEND_HOST = "backend"


@dataclass(frozen=True)
class WorkerReport:
    hostname: str
    celery: str
    broker: str  # scheme://host:port, no password
    backend: str
    backend_from_environment: bool  # the app stores results where the stack's environment says
    kept_by_project: dict[str, Any] = field(default_factory=dict)
    app: str = ""  # the app the worker runs (TCEL_APP)

    @classmethod
    def parse(cls, hostname: str, text: str) -> WorkerReport:
        data = json.loads(text)
        return cls(
            hostname,
            str(data.get("celery", "")),
            str(data.get("broker", "")),
            str(data.get("backend", "")),
            bool(data.get("backend_from_environment", True)),
            dict(data.get("kept_by_project") or {}),
            str(data.get("app", "")),
        )

    @property
    def backend_forced(self) -> bool:
        """The app stores its results somewhere else than the stack's Redis, whatever the environment says."""
        return not self.backend_from_environment or f"//{STACK_BACKEND_HOST}" not in self.backend


def read(client: Any) -> list[WorkerReport]:
    """Every worker's report, from a redis-py client on the stack's backend; unreadable ones are left out."""
    reports = []
    for hostname, text in sorted((client.hgetall(REPORT_KEY) or {}).items()):
        try:
            reports.append(WorkerReport.parse(_text(hostname), _text(text)))
        except (ValueError, TypeError, AttributeError):
            continue
    return reports


def read_from(backend_url: str, waiting_for: list[str] | None = None, patience: float = 5.0) -> list[WorkerReport]:
    """The workers' reports from the stack's backend at `backend_url`; none when it cannot be read."""
    import redis

    client = redis.Redis.from_url(backend_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return read_when_reported(client, waiting_for or [], patience)
    except redis.RedisError:
        return []
    finally:
        client.close()


def read_when_reported(client: Any, hostnames: list[str], patience: float) -> list[WorkerReport]:
    """The reports, once each of `hostnames` has one or after `patience` seconds. A worker answers a ping a
    moment before it writes its report (Celery sends worker_ready after its control bootstep has started), so
    reading right after the ping can miss it."""
    import time

    deadline = time.monotonic() + patience
    while True:
        reports = read(client)
        missing = set(hostnames) - {report.hostname for report in reports}
        if not missing or time.monotonic() >= deadline:
            return reports
        time.sleep(0.1)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Findings:
    """What `up` tells about the workers: notes, and warnings of what will not work as the user expects."""

    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def findings(reports: list[WorkerReport], app: ProjectApp, tcel_celery: str, answering: list[str]) -> Findings:
    """What the reports of the `answering` workers say that the user should know: Celery's version on each
    side when they differ or the project pins its own, each safe setting the project's configuration keeps, a
    broker or backend the app forces elsewhere than the stack's. Reports stay in Redis after their worker is
    gone (stopped cold, or killed), so the others are left out, as are any of another app."""
    found = Findings()
    reports = [r for r in reports if r.hostname in answering and r.app in ("", app.name)]
    versions = sorted({r.celery for r in reports if r.celery})
    if versions and (app.pins_celery or versions != [tcel_celery]):
        pinned = " (the project pins it)" if app.pins_celery else ""
        found.notes.append(f"Celery {', '.join(versions)} in the workers{pinned}, {tcel_celery} in tcel")
    kept: dict[str, Any] = {}
    for report in reports:
        kept.update(report.kept_by_project)
    for key, value in sorted(kept.items()):
        found.notes.append(f"the project's configuration keeps {key}={value!r} (tcel would set its own)")
    for report in reports:
        if f"//{STACK_BROKER_HOST}" not in report.broker:
            found.warnings.append(
                f"{report.hostname} uses the broker {report.broker}, not the stack's: the project forces it, "
                "so tasks sent with tcel do not reach it"
            )
            break
    forced = next((r for r in reports if r.backend_forced), None)
    if forced is not None:
        found.warnings.append(forced_backend_message(forced))
    return found


def forced_backend_message(report: WorkerReport) -> str:
    return (
        f"app stores its results in {report.backend or 'its own backend'} whatever the environment says: "
        "'tcel result' and '--wait' cannot see them (let CELERY_RESULT_BACKEND choose the backend)"
    )


def database_note(app: ProjectApp) -> str | None:
    """A Django project whose database is a server: tcel runs none, the workers reach the one its settings name."""
    engine = app.database_engine
    if not engine or engine.endswith("sqlite3"):
        return None
    return (
        f"Django's database is a server ({engine}): tcel runs no database service, so the workers reach only "
        "the one its settings name, from inside Docker (not 'localhost')"
    )
