"""Project identity and settings: option, then environment, then the user's config file, then default."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .names import LABEL_PROJECT

TEMPLATE_DIR = Path(__file__).parent / "template"

DEFAULTS = {
    "TCEL_BROKER_IMAGE": "rabbitmq:4",
    "TCEL_BACKEND_IMAGE": "redis:7",
    "TCEL_PYTHON_IMAGE": "python:3.12-slim",
    "TCEL_BIND": "127.0.0.1",
    "TCEL_BROKER_PORT": "5672",
    "TCEL_BACKEND_PORT": "6379",
    "TCEL_FLOWER_PORT": "5555",
    "TCEL_METRICS_PORT": "9808",
    "TCEL_ENGINE": "containers",  # or "swarm"
    "TCEL_REGISTRY_IMAGE": "registry:2",  # the registry `tcel up --swarm` runs when no --registry is given
}


def user_state_dir() -> Path:
    """Where stacks' credentials and locks live, by project name (never inside a build context)."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "tcel"


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tcel" / "config.env"


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# C0 and C1 controls and DEL: no setting or secret holds one, and in a value they would reach a terminal or,
# through a newline written back, become a line of their own
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def read_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (the format docker compose's --env-file reads too; `export KEY=VALUE`, as a shell
    file has it, is the same line). A key that is not a name, or a value with a control character, is refused."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return read_env_text(text, str(path))


def read_env_text(text: str, where: str) -> dict[str, str]:
    """read_env_file's reading of `text`; `where` names it in an error."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        key = key.removeprefix("export ").strip()
        value = _unquoted(value.strip())
        if not _KEY.fullmatch(key) or _CONTROL.search(value):
            raise UsageError(
                f"{where}, line {number}: not a KEY=VALUE line ({line[:60]!r})",
                hint="keys are names such as TCEL_BROKER_IMAGE, and values hold no control characters",
            )
        values[key] = value
    return values


def _unquoted(value: str) -> str:
    """The value without one pair of matching quotes around it."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def env_line(key: str, value: str) -> str:
    """One KEY=VALUE line that read_env_file reads back as it was (quoted when its ends would be taken for
    quotes or spaces); a key or value it would refuse is refused here."""
    if not _KEY.fullmatch(key) or _CONTROL.search(value):
        raise UsageError(
            f"cannot keep {key}={value[:60]!r} in a state file",
            hint="a value with a control character or a line break cannot be kept: give it without one",
        )
    quoted = value != value.strip() or _unquoted(value) != value
    return f"{key}='{value}'\n" if quoted else f"{key}={value}\n"


def setting(key: str, option: str | int | None = None) -> str:
    """The value of a TCEL_* setting: the option if given, else env, else user config, else default."""
    if option is not None:
        return str(option)
    if key in os.environ:
        return os.environ[key]
    return read_env_file(user_config_path()).get(key, DEFAULTS[key])


def is_set(key: str, option: str | int | None = None) -> bool:
    """Whether the user chose this setting (option, environment or config file) rather than the default."""
    return option is not None or key in os.environ or key in read_env_file(user_config_path())


def port_setting(key: str, option: int | None) -> int:
    raw = setting(key, option)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise UsageError(f"invalid port {raw!r} from {key}", hint="use a number from 1 to 65535")
    return int(raw)


def bind_setting(option: str | None) -> str:
    raw = setting("TCEL_BIND", option)
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise UsageError(f"invalid bind address {raw!r}", hint="give an IP address such as 127.0.0.1") from None


# The longest name tcel gives anything of a stack is a Swarm secret's, `tcel-<project>-<service>-<12 hex digits>`
# with the longest service, `autoscaler`: Swarm takes at most 64 characters there, which leaves 35 for the project
# (its services' names, `tcel-<project>-autoscaler`, must fit a 63-character DNS label: 47).
PROJECT_NAME_MAX = 64 - len("tcel--autoscaler-") - 12


def require_fitting_name(name: str) -> None:
    """Refuse, before anything is made, a project name too long for every name `up` gives its parts."""
    if len(name) > PROJECT_NAME_MAX:
        raise UsageError(
            f"project name {name!r} has {len(name)} characters, more than the {PROJECT_NAME_MAX} that fit in the "
            "names Docker and Swarm give a stack's parts (a Swarm secret's name holds 64, and tcel adds 27)",
            hint="pass a shorter --project-name (or TCEL_PROJECT_NAME)",
        )


def normalize_project_name(raw: str) -> str:
    """Lower-case letters, digits, '-' and '_', starting with a letter or digit, as compose does."""
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower()).lstrip("_-")
    if not name:
        raise UsageError(f"cannot make a project name from {raw!r}", hint="pass --project-name")
    return name


@dataclass(frozen=True)
class Project:
    """One stack: its name, its directory, and the names of everything tcel makes for it."""

    name: str
    directory: Path

    @property
    def build_context(self) -> Path:
        """The project's own Dockerfile and tasks, or those shipped with tcel when it has none."""
        return self.directory if (self.directory / "Dockerfile").is_file() else TEMPLATE_DIR

    @property
    def state_dir(self) -> Path:
        return user_state_dir()

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_PROJECT: self.name}

    @property
    def network(self) -> str:
        return f"tcel-{self.name}"

    def container(self, service: str, number: int | None = None) -> str:
        return f"tcel-{self.name}-{service}" + (f"-{number}" if number else "")

    def volume(self, service: str) -> str:
        return f"tcel-{self.name}-{service}-data"


def resolve_project(directory: Path | None, name: str | None) -> Project:
    root = (directory or Path.cwd()).resolve()
    if not root.is_dir():
        raise UsageError(f"project directory {root} does not exist", hint="check --project-dir")
    raw = name or os.environ.get("TCEL_PROJECT_NAME") or root.name
    return Project(name=normalize_project_name(raw), directory=root)
