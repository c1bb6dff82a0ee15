"""The tcel command line: the Typer app, its commands, and the one place errors become exit codes."""

from __future__ import annotations

import sys

import typer

from .commands import stack, status, tasks
from .errors import ExitCode, TcelError
from .output import Output

app = typer.Typer(
    name="tcel",
    help="Run a Celery stack (RabbitMQ, Redis, workers) in Docker and see what it is doing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
stack.register(app)
status.register(app)
tasks.register(app)


def main() -> None:
    """Run the CLI: expected failures print one line and exit with their code; bugs keep their traceback."""
    try:
        app()
    except TcelError as error:
        Output().error(error)
        sys.exit(int(error.exit_code))
    except KeyboardInterrupt:
        Output().info("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
