"""Which stack a command talks to: the project, and the broker and backend URLs it resolves to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .credentials import load, state_file
from .errors import NotRunning
from .settings import Project, resolve_project

URL_VARIABLES = {"broker": "CELERY_BROKER_URL", "backend": "CELERY_RESULT_BACKEND_URL"}


@dataclass(frozen=True)
class Endpoints:
    """The broker and backend URLs the task commands talk to."""

    broker_url: str
    backend_url: str | None  # None: sending works, results cannot be looked up


@dataclass(frozen=True)
class Target:
    """What the "which stack" options say: a project directory and name, and URLs given explicitly."""

    project_dir: Path | None = None
    project_name: str | None = None
    broker_url: str | None = None
    backend_url: str | None = None

    @cached_property
    def project(self) -> Project:
        return resolve_project(self.project_dir, self.project_name)

    def url(self, service: str) -> str:
        """The broker's or backend's URL: the option, else the seed's CELERY_* variable, else the stack's. Once
        either is given by option or variable, the other never comes from this directory's stack: a broker
        elsewhere paired with the local backend would index and wait in the wrong place."""
        given = {"broker": self.broker_url, "backend": self.backend_url}
        given = {s: option or os.environ.get(URL_VARIABLES[s]) for s, option in given.items()}
        chosen = given[service]
        if chosen:
            return chosen
        if any(given.values()):
            other = next(s for s in given if given[s])
            raise NotRunning(
                f"the {other} was given, but no {service} URL was",
                hint=f"pass --{service}-url or set {URL_VARIABLES[service]}",
            )
        return resolve_url(self.project, service, None)

    def endpoints(self, backend_required: bool = True) -> Endpoints:
        """Both URLs; a task can be sent with only a broker, so the backend may be optional."""
        broker = self.url("broker")
        try:
            return Endpoints(broker, self.url("backend"))
        except NotRunning:
            if backend_required:
                raise
            return Endpoints(broker, None)

    def given(self, service: str) -> bool:
        """Whether the service's URL was given (option or CELERY_* variable) rather than read from the stack."""
        option = self.broker_url if service == "broker" else self.backend_url
        return bool(option or os.environ.get(URL_VARIABLES[service]))


def resolve_url(project: Project, service: str, option: str | None) -> str:
    """The option first, then the seed's CELERY_* variable, then the stack `tcel up` started here."""
    url = option or os.environ.get(URL_VARIABLES[service])
    if url:
        return url
    stack = load(project)
    if stack is None:
        raise NotRunning(
            f"no stack {project.name!r} has been started (no {state_file(project)})",
            hint=f"run 'tcel up' there, or pass --{service}-url",
        )
    from .broker_tls import trust

    trust(stack)  # the stack's own authority verifies its amqps:// (rediss:// names it in the URL)
    return stack.broker_url() if service == "broker" else stack.backend_url()
