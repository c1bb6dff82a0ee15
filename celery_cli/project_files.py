"""The files of a new project (`tcel init`): tcel's worker template written out as real files, and a
requirements.txt for the project's own dependencies."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .settings import TEMPLATE_DIR

REQUIREMENTS = """\
# The worker's own Python dependencies, one per line as pip reads them (such as humanize==4.12.3).
# They are installed into the worker image in a layer of their own (a changed tasks.py does not reinstall
# them), with the Celery versions of constraints.txt still pinned.
"""


def project_files() -> dict[str, bytes]:
    """Name -> content of every file a new project gets; the template's links are read through."""
    files = {path.name: path.read_bytes() for path in sorted(TEMPLATE_DIR.iterdir()) if path.is_file()}
    files["requirements.txt"] = REQUIREMENTS.encode()
    return files


def write_project(directory: Path, force: bool = False) -> list[Path]:
    """Write a new project into `directory`, made if missing; return the files written. Unless `force`,
    refuse before writing anything when one of them exists already."""
    files = project_files()
    taken = [directory / name for name in files if (directory / name).exists() or (directory / name).is_symlink()]
    if taken and not force:
        names = ", ".join(path.name for path in taken)
        raise UsageError(
            f"{names} already {'exists' if len(taken) == 1 else 'exist'} in {directory}",
            hint="tcel init writes only new files; pass --force to overwrite them",
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", hint="give a new or existing directory")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = directory / name
        if path.is_symlink():
            path.unlink()  # write a file of the project's own, not through a link to someone else's
        path.write_bytes(content)
        written.append(path)
    return written
