"""`tcel init`: write a new project to edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..output import Output
from .options import Json


def init(
    directory: Annotated[
        Path | None, typer.Argument(help="Where to write it (default: the current directory); made if missing.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    json: Json = False,
) -> None:
    """Write a new project: Dockerfile, tasks.py, celeryconfig.py, requirements.txt and what they need.

    Refuses to overwrite a file that exists (exit 2) unless --force.
    """
    from ..project_files import write_project

    out = Output(json)
    where = (directory or Path.cwd()).absolute()
    written = write_project(where, force)
    if json:
        out.data({"directory": str(where), "written": [path.name for path in written]})
        return
    out.success(f"wrote a project in {where}: {', '.join(path.name for path in written)}")
    out.info(
        f"  next: cd {where} && tcel up --watch, then edit tasks.py"
        if directory
        else "  next: tcel up --watch, then edit tasks.py"
    )


def register(app: typer.Typer) -> None:
    app.command()(init)
