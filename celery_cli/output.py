"""The one output layer: data to stdout, status and errors to stderr, JSON, tables and spinners."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from .errors import TcelError

Progress = Callable[[str], None]
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta")


def _ignore(_: str) -> None:
    """A progress callback that shows nothing (no terminal, or JSON wanted)."""


class Output:
    """Decides colour, spinners and JSON in one place; commands never print directly."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    @cached_property
    def stdout(self) -> Console:
        console = _human_console(highlight=False, soft_wrap=True, emoji=False)  # data is printed as it is
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 200  # tables piped to a file or a script are not cut to 80 columns
        return console

    @cached_property
    def stderr(self) -> Console:
        return _human_console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    @property
    def interactive(self) -> bool:
        """True when a person watches stderr: only then are spinners drawn."""
        return self.stderr.is_terminal and not self.stderr.is_dumb_terminal

    def info(self, message: str) -> None:
        self.stderr.print(message, markup=False)

    def success(self, message: str) -> None:
        self.stderr.print(f"[green]✔[/green] {_escape(message)}")

    def warn(self, message: str) -> None:
        self.stderr.print(f"[yellow]warning:[/yellow] {_escape(message)}")

    def error(self, error: TcelError) -> None:
        self.stderr.print(f"[bold red]error:[/bold red] {_escape(str(error))}")

    def confirm(self, question: str, refusal: str, hint: str) -> bool:
        """Ask a yes/no question on the terminal; without one, refuse with a usage error naming `hint`."""
        from .errors import UsageError

        if not sys.stdin.isatty():
            raise UsageError(refusal, hint=hint)
        from rich.prompt import Confirm

        return Confirm.ask(question, console=self.stderr, default=False)

    def data(self, value: Any) -> None:
        """Print one JSON document to stdout."""
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def json_line(self, value: Any) -> None:
        """Print one JSON document on one line (for streams such as `tcel watch --json`)."""
        sys.stdout.write(json.dumps(value, default=str) + "\n")
        sys.stdout.flush()

    def live(self) -> Any:
        """A Rich Live display on stdout, for views that redraw in place."""
        from rich.live import Live

        return Live(console=self.stdout, auto_refresh=False, redirect_stderr=False)

    def group(self, *renderables: Any) -> Any:
        from rich.console import Group

        return Group(*renderables)

    def log_line(self, source: str, text: str) -> None:
        """One log line prefixed with where it came from, as docker compose does."""
        colour = _COLOURS[sum(source.encode()) % len(_COLOURS)]
        self.stdout.print(f"[{colour}]{_escape(source):<10}|[/{colour}] {_escape(text)}")

    def line(self, text: str) -> None:
        """Print a plain line of data to stdout."""
        self.stdout.print(text, markup=False)

    def render(self, *renderables: Any) -> None:
        """Print Rich renderables (tables, texts) to stdout."""
        for renderable in renderables:
            self.stdout.print(renderable)

    @contextmanager
    def progress(self, description: str) -> Iterator[Callable[[int, int], None]]:
        """A progress bar on stderr while the block runs; yield a function taking (done, total)."""
        if not self.interactive or self.json_mode:
            yield lambda done, total: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            f"[bold]{_escape(description)}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.stderr,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)

    @contextmanager
    def status(self, message: str) -> Iterator[Progress]:
        """Show a spinner with elapsed time while the block runs; yield a function to update its text. The
        line is gone afterwards, also after Ctrl-C."""
        if not self.interactive or self.json_mode:
            yield _ignore
            return
        from rich.progress import Progress as Bar
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        with Bar(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.stderr, transient=True
        ) as bar:
            task = bar.add_task(_escape(message), total=None)
            yield lambda text: bar.update(task, description=_escape(text))


# C0 and C1 control characters but newline and tab, and DEL: in a task's result, a traceback or a log line they
# would reach the terminal as commands (OSC 52 sets the clipboard, CSI 2J clears the screen, a bare CR hides what
# came before). JSON output keeps them, escaped by the encoder.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    return _CONTROLS.sub("", text)


def _human_console(**settings: Any) -> Console:
    """A Rich console whose every printed text, table cell or log line has its control characters removed;
    Rich's own escape sequences (colours, a Live display's cursor moves) are not in the text and pass."""
    from rich.console import Console
    from rich.segment import Segment

    class HumanConsole(Console):
        def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
            for segment in super().render(renderable, options):
                if segment.control is None and _CONTROLS.search(segment.text):
                    segment = Segment(strip_controls(segment.text), segment.style)
                yield segment

    return HumanConsole(**settings)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
