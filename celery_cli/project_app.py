"""Which Celery app a project runs, found as `celery -A` would find it, by reading the project's files.

The project's code is never imported on the host: its dependencies live in the worker image, not here. So the
files are parsed (`ast`), and a module counts as defining an app when it assigns `Celery(...)` at its top level.
`celery -A NAME` (celery/app/utils.py `find_app`) imports NAME and takes its attribute `app`, else `celery`, else,
for a package, the module `NAME.celery` the same way, else any Celery instance among the module's names: the
candidates here are named so that `celery -A` finds exactly the app they were found as.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

TEMPLATE_APP = "tasks"
# what `celery -A NAME` takes from the module NAME first
APP_ATTRIBUTES = ("app", "celery")
# never a project's own app: tools, virtual environments, caches, tests and what builds leave behind
SKIPPED_DIRS = frozenset(
    {"node_modules", "site-packages", "build", "dist", "migrations", "tests", "test", "docs", "__pycache__"}
)
MAX_DEPTH = 3  # package levels searched below the project's directory
MAX_FILE_BYTES = 1_000_000  # a generated or vendored file this big is no app module
APP_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")
DATABASE_ENGINE = re.compile(r"""["']ENGINE["']\s*:\s*["']([\w.]+)["']""")


@dataclass(frozen=True)
class Candidate:
    """A Celery app defined in the project: the `celery -A` argument that finds it, and the file it is in."""

    name: str
    path: Path  # relative to the project's directory


@dataclass(frozen=True)
class ProjectApp:
    """The app a project's workers run, and what the worker image needs to know about the project."""

    name: str  # the `celery -A` argument: "proj", "tasks", "app:celery_app"...
    source: str  # how it was chosen: "--app", "TCEL_APP", "remembered", "found in proj/celery.py", "tcel's template"
    template: bool = False  # the directory has no Celery app of its own: tcel's template runs
    django_settings: str | None = None  # DJANGO_SETTINGS_MODULE from manage.py, for a Django project
    database_engine: str | None = None  # the ENGINE of Django's default database, when the settings name one
    dependencies: str | None = None  # "requirements.txt" or "pyproject.toml" when the project declares any
    pins_celery: bool = False  # those dependencies pin Celery's version themselves (== or a bounded range)

    @property
    def module(self) -> str:
        """The top-level module or package the app lives in (what a reload watches)."""
        return self.name.split(":")[0].split(".")[0]


def find_app(directory: Path, option: str | None = None, remembered: str | None = None) -> ProjectApp:
    """The app to run: `option` (--app) wins, then TCEL_APP, then `remembered` (the project's state), then the
    one app the directory defines; tcel's template where it defines none. Several apps and no choice: exit 2."""
    for value, source in ((option, "--app"), (os.environ.get("TCEL_APP") or None, "TCEL_APP"), (remembered, None)):
        if value:
            return _project_app(directory, _checked(value, source or "the project's state"), source or "remembered")
    found = candidates(directory)
    if not found:
        return ProjectApp(TEMPLATE_APP, "tcel's template", template=True)
    if len(found) > 1:
        listed = ", ".join(f"{c.name} ({c.path.as_posix()})" for c in found)
        raise UsageError(
            f"{directory} defines {len(found)} Celery apps: {listed}",
            hint=f"choose one with --app (for example 'tcel up --app {found[0].name}') or TCEL_APP",
        )
    return _project_app(directory, found[0].name, f"found in {found[0].path.as_posix()}")


def candidates(directory: Path) -> list[Candidate]:
    """Every app the project defines at the top level of a module, named as `celery -A` finds it."""
    found: list[Candidate] = []
    for path in _modules(directory):
        relative = path.relative_to(directory)
        instances = _celery_instances(path)
        if instances:
            found.extend(_named(relative, instances))
    return sorted(found, key=lambda c: (c.name.count("."), c.name))


def django_settings(directory: Path) -> str | None:
    """The settings module manage.py sets (`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")`)."""
    tree = _parsed(directory / "manage.py")
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) == 2:
            key, value = node.args
            if _constant(key) == "DJANGO_SETTINGS_MODULE" and isinstance(_constant(value), str):
                return str(_constant(value))
    return None


def database_engine(directory: Path, settings_module: str) -> str | None:
    """The ENGINE of the first database the settings module names (read as text: settings are often computed)."""
    base = directory.joinpath(*settings_module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py", base / "base.py"):
        if path.is_file():
            match = DATABASE_ENGINE.search(path.read_text(errors="replace"))
            if match:
                return match.group(1)
    return None


def declared_dependencies(directory: Path) -> tuple[str | None, bool]:
    """Where the project declares its dependencies (requirements.txt, else pyproject.toml's
    [project.dependencies]) and whether they pin Celery's version."""
    requirements = directory / "requirements.txt"
    if requirements.is_file():
        lines = [line.split("#")[0].strip() for line in requirements.read_text(errors="replace").splitlines()]
        return "requirements.txt", any(_pins_celery(line) for line in lines if line and not line.startswith("-"))
    try:
        project = tomllib.loads((directory / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None, False
    dependencies = [d for d in project.get("dependencies", []) if isinstance(d, str)]
    if not dependencies:
        return None, False
    return "pyproject.toml", any(_pins_celery(d) for d in dependencies)


def _project_app(directory: Path, name: str, source: str) -> ProjectApp:
    """The app `name`, with what the worker image needs to know about the project around it."""
    settings = django_settings(directory)
    dependencies, pins = declared_dependencies(directory)
    return ProjectApp(
        name,
        source,
        django_settings=settings,
        database_engine=database_engine(directory, settings) if settings else None,
        dependencies=dependencies,
        pins_celery=pins,
    )


def _checked(value: str, source: str) -> str:
    value = value.strip()
    if not APP_NAME.match(value):
        raise UsageError(
            f"{value!r} from {source} is not a Celery app name",
            hint="give what 'celery -A' takes: a module or package (proj, proj.celery) or module:attribute",
        )
    return value


def _pins_celery(requirement: str) -> bool:
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)", requirement)
    if not match or re.sub(r"[-_.]+", "-", match.group(1)).lower() != "celery":
        return False
    specifier = match.group(3)
    return "==" in specifier or "~=" in specifier or "<" in specifier


def _modules(directory: Path) -> list[Path]:
    """The project's top-level modules, and the modules of its packages down to MAX_DEPTH levels."""
    found: list[Path] = []

    def visit(folder: Path, depth: int) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith((".", "_")) and entry.name != "__init__.py":
                continue
            if entry.is_file() and entry.suffix == ".py" and not entry.name.startswith("test"):
                found.append(entry)
            elif entry.is_dir() and depth < MAX_DEPTH and _is_package(entry):
                visit(entry, depth + 1)

    visit(directory, 0)
    return found


def _is_package(folder: Path) -> bool:
    """A folder `celery -A` can import from: a package, or a namespace package holding a celery.py."""
    if folder.name in SKIPPED_DIRS or folder.name.endswith(".egg-info") or (folder / "pyvenv.cfg").exists():
        return False
    return (folder / "__init__.py").is_file() or (folder / "celery.py").is_file()


def _celery_instances(path: Path) -> list[str]:
    """The names a module binds to `Celery(...)` at its top level (`app = Celery("proj")`, `celery.Celery()`)."""
    tree = _parsed(path)
    if tree is None:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Call) and _called_name(value.func) == "Celery":
            names.extend(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _named(relative: Path, instances: list[str]) -> list[Candidate]:
    """The `celery -A` arguments that find these instances of one module."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        if not parts:
            return []  # the project's directory itself is no module `celery -A` can name
    elif parts[-1] == "celery" and len(parts) > 1:
        parts.pop()  # `celery -A proj` takes proj.celery's app
    module = ".".join(parts)
    if any(name in APP_ATTRIBUTES for name in instances) or len(instances) == 1:
        return [Candidate(module, relative)]
    return [Candidate(f"{'.'.join(relative.with_suffix('').parts)}:{name}", relative) for name in instances]


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _constant(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _parsed(path: Path) -> ast.Module | None:
    """A module's syntax tree; None for a file that is missing, too big, or not Python 3."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def uses_database_scheduler(directory: Path) -> bool:
    """Whether the project's modules (top level and one package down, read, not imported) name
    django-celery-beat, whose DatabaseScheduler keeps entries in Django's database, out of RedBeat's sight."""
    for path in (*directory.glob("*.py"), *directory.glob("*/*.py")):
        try:
            if "django_celery_beat" in path.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False
