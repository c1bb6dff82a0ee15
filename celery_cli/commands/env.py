"""`tcel env`: the variables a plain Celery client on the host needs to reach this project's stack."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ..endpoints import Target
from ..errors import NotRunning
from ..output import Output
from .options import Json, which_stack


class Shell(StrEnum):
    sh = "sh"
    fish = "fish"
    powershell = "powershell"


@which_stack()
def env(
    target: Target,
    shell: Annotated[
        Shell, typer.Option(help="Print the lines for this shell (sh also suits bash and zsh).")
    ] = Shell.sh,
    json: Json = False,
) -> None:
    """Print CELERY_BROKER_URL and CELERY_RESULT_BACKEND_URL of this project's stack, as reachable from here.

    A stack that serves TLS (--bind beyond loopback, or Swarm) gets amqps:// and rediss:// URLs and TCEL_CA_FILE,
    its authority's certificate, to verify them with (docs/security.md).

    eval "$(tcel env)" and then the tutorial's client (python -c 'from tasks import add; print(add.delay(2, 3).get())')
    talks to the stack. This is the one command that prints the stack's passwords in full: that is its
    purpose, so mind where its output goes. Every other command masks them.
    """
    from ..credentials import load, state_file
    from ..shell import export_lines

    access = load(target.project)
    if access is None:
        raise NotRunning(
            f"no stack {target.project.name!r} has been started (no {state_file(target.project)})",
            hint="run 'tcel up' there first",
        )
    variables = access.on_host()
    out = Output(json)
    if json:
        out.data(variables)
        return
    for line in export_lines(variables, shell.value):
        out.line(line)


def register(app: typer.Typer) -> None:
    app.command()(env)
