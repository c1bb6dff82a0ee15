"""The tcel command line: the Typer app, its commands, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .commands import (
    beat,
    bench,
    control,
    env,
    flower,
    init,
    inspect,
    lifecycle,
    metrics,
    results,
    retry,
    sending,
    status,
    workflows,
)
from .errors import ExitCode, TcelError
from .output import Output


class TcelGroup(TyperGroup):
    """Expected failures print one line and exit with their code; bugs keep their traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TcelError as error:
            Output().error(error)
            sys.exit(int(error.exit_code))
        except (KeyboardInterrupt, typer.Abort):  # Ctrl-C, also at a prompt
            Output().info("interrupted")
            sys.exit(int(ExitCode.INTERRUPTED))


app = typer.Typer(
    name="tcel",
    cls=TcelGroup,
    help="Run a Celery stack (RabbitMQ, Redis, workers) in Docker and see what it is doing.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; values come from commands/completion.py
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"tcel {version('tcel')} (Celery {version('celery')})")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Run a Celery stack (RabbitMQ, Redis, workers) in Docker and see what it is doing."""


for commands in (
    init,
    lifecycle,
    env,
    status,
    flower,
    metrics,
    sending,
    retry,
    workflows,
    results,
    inspect,
    control,
    beat,
    bench,
):
    commands.register(app)


def main() -> None:
    app()
