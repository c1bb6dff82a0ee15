"""The output layer: what reaches a person's terminal carries no control sequences from the data; JSON is exact."""

from __future__ import annotations

import io
import json

import pytest

from celery_cli.errors import TcelError
from celery_cli.output import Output

# OSC 52 (set the clipboard), CSI 2J (clear the screen), a bare CR, a bell, C1's CSI, DEL
HOSTILE = "ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\rhidden\x9b31m\x7f\tend\nnext"


def captured(console) -> io.StringIO:
    console.file = io.StringIO()
    return console.file


@pytest.mark.parametrize("terminal", [False, True])
def test_human_output_strips_control_characters_but_newline_and_tab(terminal: bool) -> None:
    from rich.table import Table

    out = Output()
    stdout, stderr = captured(out.stdout), captured(out.stderr)
    out.stdout._force_terminal = out.stderr._force_terminal = terminal
    table = Table("result")
    table.add_row(HOSTILE)
    out.line(HOSTILE)
    out.log_line("worker-1", HOSTILE)
    out.render(table)
    out.info(HOSTILE)
    out.warn(HOSTILE)
    out.error(TcelError(HOSTILE))
    for text in (stdout.getvalue(), stderr.getvalue()):
        plain = text.replace("\x1b[0m", "")  # Rich's own styles on a terminal end with SGR resets
        assert "\x1b]" not in plain and "\x1b[2J" not in plain and "\x07" not in plain and "\r" not in plain
        assert "\x9b" not in plain and "\x7f" not in plain
    # the printable rest is kept, the line break too (Rich expands the tab to spaces)
    assert "ok]52;c;cm0gLXJmIH4=[2Jhidden31m " in stdout.getvalue() and "end\nnext" in stdout.getvalue()


def test_json_output_keeps_the_data_exact(capsys) -> None:
    Output(json_mode=True).data({"result": HOSTILE})
    assert json.loads(capsys.readouterr().out) == {"result": HOSTILE}


def test_a_live_display_keeps_riches_own_cursor_controls_and_loses_the_datas() -> None:
    out = Output()
    stdout = captured(out.stdout)
    out.stdout._force_terminal = True
    with out.live() as live:
        live.update(HOSTILE, refresh=True)
    assert "\x1b[?25l" in stdout.getvalue()  # Rich hides the cursor while it draws
    assert "\x1b[2J" not in stdout.getvalue() and "\x1b]52" not in stdout.getvalue()


def test_wait_json_prints_one_line_per_change_of_a_custom_state_even_with_a_late_started_between(capsys) -> None:
    from celery_cli.commands.sending import StatesSeen

    seen = StatesSeen(Output(json_mode=True), "id-1", lambda text: None)
    progress = [{"status": "PROGRESS", "result": {"current": n, "total": 3}} for n in (1, 2, 3)]
    # GET reads the first PROGRESS, then pub/sub delivers the STARTED and that PROGRESS again
    for meta in (progress[0], {"status": "STARTED"}, progress[0], progress[1], progress[1], progress[2]):
        seen.seen(meta)
    seen.seen({"status": "SUCCESS", "result": 3})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["meta"]["current"] for line in lines] == [1, 2, 3] and seen.lines == 3
