"""What goes into a project's worker image: the project's own Dockerfile as it is, one tcel writes for an app
without one, or tcel's template where the directory has no app; then, on top, tcel's worker side (its app
wrapper and hooks, the entrypoint that reads Swarm's secrets) and tcel's worker command. The same image runs on
plain containers and on Swarm."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..project_app import ProjectApp
from ..settings import TEMPLATE_DIR, Project

if TYPE_CHECKING:
    import docker

    from ..output import Progress
    from .images import BuildContext

WORKER_SIDE = Path(__file__).parent.parent / "worker_side"
CONSTRAINTS = TEMPLATE_DIR / "constraints.txt"
# tcel's files in the build context, out of the way of the project's own
DEPENDENCIES_DIR = ".tcel/deps"
WORKER_SIDE_DIR = ".tcel/worker"
WORKER_SIDE_PATH = "/opt/tcel"
# The beat's scheduler (celery-redbeat) and what it needs beside Celery, copied from tcel's own environment
# (pinned by constraints.txt) into the worker side's lib/, which tcel_beat.py uses when the project's image has
# no RedBeat of its own: pure Python, so any image takes them, whatever its user, pip or package index.
BEAT_PACKAGES = ("redbeat", "tenacity")
# `celery -A tcel_worker` loads the project's app (TCEL_APP) with tcel's settings and hooks (tcel_worker.py).
# Without mingle: a lone worker would wait a second at start for neighbours that are not there.
WORKER_COMMAND = ("celery", "-A", "tcel_worker", "worker", "--loglevel=INFO", "--without-mingle")
# What a project without a .dockerignore keeps out of its image: version control, virtual environments,
# caches, editors' files, other ecosystems' packages, and .env files, which hold secrets.
DEFAULT_IGNORE = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "env",
    ".env",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".idea",
    ".vscode",
    "node_modules",
    "**/node_modules",
    "**/__pycache__",
    "**/*.pyc",
    "*.egg-info",
    ".tcel",
)

GENERATED_DOCKERFILE = """\
# Written by tcel for a project without a Dockerfile: its dependencies in a layer of their own, then its
# files, run by a non-root user who owns them (a Django project's SQLite file is written by the worker).
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${{PYTHON_IMAGE}}
RUN groupadd --system user && useradd --system --create-home --home-dir /home/user --gid user user \\
    && mkdir /app && chown user:user /app
WORKDIR /app
COPY {deps}/ /tmp/tcel-deps/
RUN pip install --no-cache-dir {constraints}"celery[redis]" -r /tmp/tcel-deps/requirements.txt
ENV PYTHONUNBUFFERED=1
COPY --chown=user:user . ./
USER user
"""

CELERY_CHECK = (
    'RUN python3 -c "import celery" 2>/dev/null || python -c "import celery" 2>/dev/null'
    ' || { echo "no Celery in this image: the worker command needs it" >&2; exit 1; }'
)


@dataclass(frozen=True)
class WorkerImage:
    """How one project's worker image is made."""

    project: Project
    app: ProjectApp
    command: tuple[str, ...] | None = None  # --worker-command; default WORKER_COMMAND

    @property
    def own_dockerfile(self) -> bool:
        return (self.project.directory / "Dockerfile").is_file()

    @property
    def generated(self) -> bool:
        """The project has an app and no Dockerfile: tcel writes one."""
        return not self.own_dockerfile and not self.app.template

    @property
    def context(self) -> Path:
        """Where the image's files come from: the project, or tcel's template where it has no app."""
        return TEMPLATE_DIR if self.app.template and not self.own_dockerfile else self.project.directory

    @property
    def dockerfile(self) -> Path | None:
        """The Dockerfile the image is built from, None when tcel writes it."""
        return None if self.generated else self.context / "Dockerfile"

    @property
    def ignore_patterns(self) -> list[str]:
        """The context's .dockerignore, else DEFAULT_IGNORE."""
        ignore = self.context / ".dockerignore"
        if ignore.is_file():
            lines = [line.strip() for line in ignore.read_text().splitlines()]
            return [line for line in lines if line and not line.startswith("#")]
        return list(DEFAULT_IGNORE)

    @cached_property
    def worker_command(self) -> tuple[str, ...]:
        return self.command or WORKER_COMMAND

    def files(self) -> list[str]:
        """The project's files that go into the image now (what `up --watch` watches), relative to the context."""
        from .images import context_files

        return context_files(self.context, self.ignore_patterns)

    def read(self) -> BuildContext:
        """The build context: the project's files as they are now, with tcel's Dockerfile (for an app without
        one), tcel's worker side and its layer at the end of the Dockerfile."""
        from .images import BuildContext

        files = dict(BuildContext.read(self.context, self.ignore_patterns, self.context == TEMPLATE_DIR).files)
        files.pop(".dockerignore", None)  # applied already; the engine would drop tcel's .tcel/ files by it
        if self.generated:
            files["Dockerfile"] = (self._generated_dockerfile().encode(), 0o644)
            files[f"{DEPENDENCIES_DIR}/constraints.txt"] = (CONSTRAINTS.read_bytes(), 0o644)
            files[f"{DEPENDENCIES_DIR}/requirements.txt"] = (self._requirements().encode(), 0o644)
        for name, source, mode in (
            ("tcel_worker.py", WORKER_SIDE / "tcel_worker.py", 0o644),
            ("tcel_worker_hooks.py", TEMPLATE_DIR / "worker_hooks.py", 0o644),
            ("tcel_beat.py", WORKER_SIDE / "tcel_beat.py", 0o644),
            ("entrypoint.sh", WORKER_SIDE / "entrypoint.sh", 0o755),
        ):
            files[f"{WORKER_SIDE_DIR}/{name}"] = (source.read_bytes(), mode)
        for path, content in beat_packages():
            files[f"{WORKER_SIDE_DIR}/lib/{path}"] = (content, 0o644)
        dockerfile, mode = files["Dockerfile"]
        files["Dockerfile"] = (dockerfile.rstrip(b"\n") + b"\n\n" + self._worker_layer().encode(), mode)
        return BuildContext(files)

    @property
    def _template_dockerfile(self) -> bool:
        """The project's Dockerfile is tcel's template's (the seed's, or one `tcel init` wrote): it has Celery."""
        return (self.project.directory / "Dockerfile").read_bytes() == (TEMPLATE_DIR / "Dockerfile").read_bytes()

    def _generated_dockerfile(self) -> str:
        constraints = "" if self.app.pins_celery else "-c /tmp/tcel-deps/constraints.txt "
        return GENERATED_DOCKERFILE.format(deps=DEPENDENCIES_DIR, constraints=constraints)

    def _requirements(self) -> str:
        """The project's dependencies as a requirements file: its requirements.txt, or pyproject.toml's
        [project.dependencies]."""
        directory = self.project.directory
        if self.app.dependencies == "requirements.txt":
            return (directory / "requirements.txt").read_text()
        if self.app.dependencies == "pyproject.toml":
            import tomllib

            declared = tomllib.loads((directory / "pyproject.toml").read_text()).get("project", {})
            return "".join(f"{line}\n" for line in declared.get("dependencies", []) if isinstance(line, str))
        return ""

    def _worker_layer(self) -> str:
        environment = {"TCEL_APP": self.app.name}
        if self.app.django_settings:
            environment["DJANGO_SETTINGS_MODULE"] = self.app.django_settings
        lines = ["# tcel's worker side (celery_cli/worker_side), its worker command and the app it runs"]
        if self.own_dockerfile and self.command is None and not self._template_dockerfile:
            lines.append(CELERY_CHECK)
        lines += [
            f"COPY {WORKER_SIDE_DIR}/ {WORKER_SIDE_PATH}/",
            "ENV " + " ".join(f"{key}={shlex.quote(value)}" for key, value in environment.items()),
            f'ENTRYPOINT ["{WORKER_SIDE_PATH}/entrypoint.sh"]',
            f"CMD {json.dumps(list(self.worker_command))}",
        ]
        return "\n".join(lines) + "\n"

    def kept(self) -> dict[str, str]:
        """What the project's state keeps so that later commands build the same image: the app (unless it is
        tcel's template, so that an app added later is found) and the worker command given."""
        return {
            "TCEL_APP": "" if self.app.template else self.app.name,
            "TCEL_WORKER_COMMAND": shlex.join(self.command) if self.command else "",
        }

    @cached_property
    def contents(self) -> BuildContext:
        """The build context, read once: the image is named after exactly the bytes it is built from."""
        return self.read()

    def name(self, python_image: str) -> str:
        """The image the project's files make (see BuildContext.image_name)."""
        return self.contents.image_name(python_image)

    def build(
        self, client: docker.DockerClient, tag: str, python_image: str, progress: Progress, pull: bool = False
    ) -> None:
        """Build the image from `contents` (the engine's BuildKit, else its older builder), its steps streamed to
        `progress`; with `pull` (`up --pull`), as `docker build --pull`: every FROM image pulled again."""
        from ..errors import ImageError
        from ..names import WORKER_IMAGE_KIND
        from .images import build

        made_from = self.dockerfile or f"a Dockerfile tcel writes for app {self.app.name}"
        progress(f"building {tag} from {made_from}")
        fix = f"fix {self.dockerfile}" if self.dockerfile else f"fix {self.app.dependencies or 'the project'}"
        hint = f"{fix}, then run 'tcel up --build'"
        try:
            build(client, self.contents, tag, python_image, WORKER_IMAGE_KIND, "worker image", hint, progress, pull)
        except ImageError as error:
            if "no Celery in this image" not in error.message:
                raise
            raise ImageError(
                f"the image {self.dockerfile} makes has no Celery: tcel's worker command runs 'celery'",
                hint="install celery in that Dockerfile, or give the command that starts the worker with "
                "--worker-command",
            ) from None


def beat_packages() -> list[tuple[str, bytes]]:
    """The Python files of BEAT_PACKAGES as installed beside tcel (found, not imported), by path in lib/."""
    from importlib.util import find_spec

    files = []
    for package in BEAT_PACKAGES:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            from ..errors import TcelError

            raise TcelError(f"{package} is not installed beside tcel", hint="reinstall tcel (pip install tcel)")
        root = Path(next(iter(spec.submodule_search_locations)))
        files += [
            (f"{package}/{path.relative_to(root)}", path.read_bytes())
            for path in sorted(root.rglob("*"))
            if path.is_file() and path.suffix in (".py", ".typed") and "__pycache__" not in path.parts
        ]
    return files


def worker_image(project: Project, app: ProjectApp | None, command: tuple[str, ...] | None = None) -> WorkerImage:
    """The project's worker image, for `app` (found in the project's directory when not given)."""
    if app is None:
        from ..credentials import kept
        from ..project_app import find_app

        app = find_app(project.directory, remembered=kept(project).get("TCEL_APP"))
    return WorkerImage(project, app, command)
