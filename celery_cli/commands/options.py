"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ProjectDir = Annotated[
    Optional[Path],
    typer.Option(
        "--project-dir",
        envvar="TCEL_PROJECT_DIR",
        file_okay=False,
        help="Directory with the project's Dockerfile and tasks.py (default: the current one).",
    ),
]
ProjectName = Annotated[
    Optional[str],
    typer.Option("--project-name", "-p", help="Project name (default: TCEL_PROJECT_NAME, else the directory's name)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout, for scripts.")]
BrokerUrl = Annotated[
    Optional[str],
    typer.Option(help="Broker to send to [env CELERY_BROKER_URL; default: the stack 'tcel up' started here]."),
]
BackendUrl = Annotated[
    Optional[str],
    typer.Option(help="Redis result backend [env CELERY_RESULT_BACKEND_URL; default: the stack's]."),
]
