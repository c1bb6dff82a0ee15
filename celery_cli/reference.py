"""The command reference, docs/cli.md: every command's `--help`, from the Typer app, as plain text at a fixed width.

Run `scripts/cli-reference --write` (or `python -m celery_cli.reference --write`) after changing a command, an
option or a help text; tests/unit/test_cli_reference.py fails while docs/cli.md is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Command  # typer 0.2x carries its own click; its Command is what get_command returns

WIDTH = 100  # columns of the help text, whatever the terminal that regenerates it
PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
REGENERATE = "scripts/cli-reference --write"
HEADER = f"""# Command reference

<!-- Generated from the Typer app; do not edit: run `{REGENERATE}`. -->

Every command's `--help`, as `tcel COMMAND --help` prints it at {WIDTH} columns. Exit codes are listed
in the [README](../README.md#exit-codes).
"""


def _contexts(command: Command, name: str, parent: typer.Context | None) -> Iterator[typer.Context]:
    """A context for this command and, depth first in the order `--help` lists them, for each subcommand."""
    ctx = typer.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    yield ctx
    if isinstance(command, TyperGroup):
        for sub in command.list_commands(ctx):
            subcommand = command.get_command(ctx, sub)
            if subcommand is not None and not subcommand.hidden:
                yield from _contexts(subcommand, sub, ctx)


def render() -> str:
    """The whole page: a heading and the `--help` text of `tcel` and of every command and subcommand."""
    import typer.main

    from .cli import app

    contexts = _contexts(typer.main.get_command(app), "tcel", None)
    sections = [f"## {ctx.command_path}\n\n```text\n{ctx.get_help().rstrip()}\n```\n" for ctx in contexts]
    return "\n".join([HEADER, *sections])


def main(argv: list[str]) -> int:
    """Print the page, or with --write replace docs/cli.md by it."""
    page = render()
    if argv == ["--write"]:
        PAGE.write_text(page)
        print(f"wrote {PAGE}", file=sys.stderr)
    elif not argv:
        sys.stdout.write(page)
    else:
        print(f"usage: {REGENERATE.split()[0]} [--write]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
