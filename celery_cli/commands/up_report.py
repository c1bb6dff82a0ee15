"""What `tcel up` and `tcel scale` print: the headline, the app, notes and warnings, what changed, and where
each service answers (--json: the same as one document)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..endpoints import Target
from ..output import Output

if TYPE_CHECKING:
    from ..project_app import ProjectApp
    from ..stack.base import UpOptions, UpReport
    from ..worker_report import Findings


def _login_line(url: str, user: str, password: str) -> str:
    from ..credentials import mask

    return f"{url} (user {user}, password {mask(password)})"


def show(
    out: Output,
    target: Target,
    report: UpReport,
    headline: str,
    endpoints: bool = False,
    options: UpOptions | None = None,
) -> None:
    from ..credentials import mask_url, state_file

    secrets = state_file(target.project)
    app = options.app if options is not None else None
    found = _worker_findings(report, app) if app is not None else None
    notes = [*report.notes, *(found.notes if found else [])]
    warnings = found.warnings if found else []
    if out.json_mode:
        shown = report.as_dict(target.project.name, str(secrets))
        if app is not None:
            shown["app"] = {"name": app.name, "source": app.source, "template": app.template}
        out.data({**shown, "notes": notes, "warnings": warnings})
        return
    out.success(headline)
    if app is not None:
        out.info(f"  app      {app.name} ({app.source})")
    for warning in warnings:
        out.warn(f"  {warning}")
    for note in notes:
        out.info(f"  note     {note}")
    for verb, names in (
        ("created", report.created),
        ("started", report.started),
        ("removed", report.removed),
        ("changed", report.changes),
    ):
        if names:
            out.info(f"  {verb:<8} {', '.join(names)}")
    if endpoints:
        out.info(f"  broker   {mask_url(report.credentials.broker_url())}")
        out.info(f"  backend  {mask_url(report.credentials.backend_url())}")
        access = report.credentials
        if report.flower:
            out.info(f"  flower   {_login_line(access.flower_url(), access.flower_user, access.flower_password)}")
        if report.metrics:
            out.info(f"  metrics  {_login_line(access.metrics_url(), access.metrics_user, access.metrics_password)}")
        if report.beat:
            out.info("  beat     running (its schedule: tcel beat)")
        if report.autoscale:
            low, high, threshold, cooldown = report.autoscale.split(":")
            out.info(
                f"  autoscale {low}..{high} workers (above {threshold} ready per worker: more; idle {cooldown}s: fewer)"
            )
        out.info(f"  secrets  {secrets}")


def _worker_findings(report: UpReport, app: ProjectApp) -> Findings:
    """What the ready workers report of themselves (nothing before they are ready), and the app's database."""
    from importlib.metadata import version

    from ..worker_report import Findings, database_note, findings, read_from

    found = Findings()
    if report.ready_after is not None:
        reports = read_from(report.credentials.backend_url(), waiting_for=report.workers)
        found = findings(reports, app, version("celery"), report.workers)
    note = database_note(app)
    if note:
        found.notes.append(note)
    return found
