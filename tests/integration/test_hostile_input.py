"""Property test of the CLI's argument handling: whatever is typed, the outcome is a result or a clear error
with its exit code, never a traceback. Runs in-process on the real stack (no mocks), over 2,000 inputs."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from celery_cli.cli import app
from celery_cli.errors import ExitCode

CODES = {int(code) for code in ExitCode}
WORDS = [
    "nan",
    "inf",
    "-inf",
    "1e999",
    "-",
    "--",
    "--json",
    "--quiet",
    "-q",
    "--help",
    "0x10",
    "1_000",
    "٣",
    "--timeout",
    "--limit",
    "-n",
    "--state",
    "--project-name",
    "--broker-url",
    "1e-400",
    "+7",
    ".5",
]

numberish = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
# call's argument forms: JSON literals good and bad, and its options with values good and bad
JSON_WORDS = [
    '"text"',
    "[1, 2]",
    '{"k": 1}',
    "{}",
    "[]",
    "null",
    "true",
    "NaN",
    "Infinity",
    "[1,",
    "{'k': 1}",
    '"',
    "--raw-strings",
    "--kwargs",
    '{"numbers": [1, 2]}',
    "--priority",
    "0",
    "9",
    "10",
    "-1",
    "--json",
    "-q",
    "--no-check",
]
SCHEDULE_WORDS = [
    "--countdown",
    "--eta",
    "--expires",
    "--queue",
    "-Q",
    "2030-01-31T14:30",
    "2030-13-01",
    "1e9",
    "amq.x",
    "extra",
    "",
    "0.5",
    "+00:00",
]
jsonish = st.one_of(
    numberish,
    st.sampled_from(JSON_WORDS),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=6,
    ).map(json.dumps),
)
invocations = st.one_of(
    st.tuples(st.just("add"), st.lists(numberish, max_size=4)),
    st.tuples(st.just("tsum"), st.lists(st.one_of(numberish, st.sampled_from(["--wait", "-w"])), max_size=6)),
    st.tuples(st.just("result"), st.lists(st.one_of(st.text(max_size=40), st.uuids().map(str)), max_size=2)),
    st.tuples(st.just("results"), st.lists(st.one_of(st.sampled_from([*WORDS, "SUCCESS"]), numberish), max_size=4)),
    st.tuples(
        st.just("status"), st.lists(st.sampled_from(["--json", "--project-dir", "/nonexistent", "-x"]), max_size=3)
    ),
    # a name the workers know, with any arguments: sent now or refused (never scheduled or sent elsewhere)
    st.tuples(st.just("call"), st.lists(jsonish, max_size=5).map(lambda args: ["tasks.tsum", *args])),
    # any name, any options including when and where: refused, by the parser or because no worker knows it
    st.tuples(
        st.just("call"),
        st.tuples(
            st.sampled_from(["tasks.hostile", "", "-", "tasks.", "\x00", "tasks.tsum2"]),
            st.lists(st.one_of(jsonish, st.sampled_from(SCHEDULE_WORDS)), max_size=6),
        ).map(lambda named: [named[0], *named[1]]),
    ),
    st.tuples(
        st.just("retry"),
        st.lists(
            st.one_of(st.text(max_size=40), st.uuids().map(str), st.sampled_from(["--wait", "--no-check", "--json"])),
            max_size=3,
        ),
    ),
    st.tuples(
        st.just("inspect"),
        st.lists(
            st.sampled_from(
                ["stats", "registered", "task", "nope", "--worker", "worker-9", "--timeout", "0", "--json", "x"]
            ),
            max_size=4,
        ),
    ),
    st.tuples(
        st.sampled_from(["", "nope", "Add", "--help", "-x", "tsum2", "resul"]),
        st.lists(st.text(max_size=8), max_size=2),
    ),  # never a command that changes the stack
)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(invocation=invocations, stdin=st.text(max_size=80))
def test_any_arguments_give_a_result_or_a_clear_error(stack, invocation, stdin) -> None:
    command, args = invocation
    result = CliRunner().invoke(
        app,
        [command, *args],
        input=stdin,
        env={"TCEL_PROJECT_DIR": str(stack.directory), "TCEL_PROJECT_NAME": stack.name, "NO_COLOR": "1"},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in CODES, (result.exit_code, result.output)
    # a failed task's traceback is data: `result` prints it on stderr, JSON documents carry it on stdout
    assert "Traceback" not in result.stderr or command == "result"
    if result.exit_code == ExitCode.USAGE:
        assert result.output.strip(), "a usage error says what was wrong"
