"""A task's result carrying terminal control sequences, end to end: `tcel call --wait` and `tcel result` print it
without them; `--json` keeps it exact."""

from __future__ import annotations

import json

# OSC 52 (set the clipboard to "hi") and CSI 2J (clear the screen), as a result could hold them
HOSTILE = "\x1b]52;c;aGk=\x07\x1b[2J"


def test_a_result_cannot_reach_the_terminal_as_control_sequences(stack) -> None:
    argument = json.dumps(HOSTILE)  # a JSON string literal, escapes and all
    waited = stack.tcel("call", "tasks.add", argument, '"tail"', "--wait")
    assert waited.code == 0, waited.stderr
    assert waited.stdout == "]52;c;aGk=[2Jtail\n"
    record = stack.tcel_json("call", "tasks.add", argument, '"tail"', "--wait")
    assert record["result"] == HOSTILE + "tail"
    shown = stack.tcel("result", record["id"])
    assert shown.code == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "]52;c;aGk=[2Jtail" in shown.stdout
