"""The streamed sum's reader (chunks cut at whitespace, every word checked, bad words named by place), the
worker's chunk task, and `call`'s stdin argument; no Docker needed."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celery_cli.errors import ExitCode, UsageError
from celery_cli.stream_sum import read_chunks
from celery_cli.task_args import INT_DIGITS_MAX, parse_json_args, parse_number
from tests.conftest import run_tcel

GOOD_WORDS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["+7", "-0", "007", "1.5", "-.5", "5.", "1e3", "2E-2", "9" * INT_DIGITS_MAX, "-" + "8" * 4300]),
)
BAD_WORDS = st.sampled_from(
    [
        "x",
        "-",
        "+",
        "--1",
        "1-2",
        "+-3",
        "1_000",
        "nan",
        "inf",
        "1e999",
        "0x10",
        "1,5",
        "٣",
        "½",
        "9" * (INT_DIGITS_MAX + 1),
        "-" + "9" * (INT_DIGITS_MAX + 1),
    ]
)
SPACES = st.sampled_from([" ", "\n", "\t", "\r\n", "  \n ", "\x0b", "\x0c"])


def joined(words: list[str], spaces: list[str]) -> bytes:
    return "".join(word + spaces[i % len(spaces)] for i, word in enumerate(words)).encode()


@settings(max_examples=80, deadline=None)
@given(
    words=st.lists(GOOD_WORDS, max_size=60),
    spaces=st.lists(SPACES, min_size=1, max_size=5),
    chunk_bytes=st.integers(min_value=8, max_value=300),
)
def test_chunks_hold_every_word_once_and_sum_as_the_words_do(words, spaces, chunk_bytes) -> None:
    """The fast whole-chunk check agrees with parse_number word by word, and no word is cut at a chunk's edge."""
    chunks = list(read_chunks(io.BytesIO(joined(words, spaces)), chunk_bytes))
    assert [word for chunk in chunks for word in chunk.text.split()] == words
    assert sum(chunk.numbers for chunk in chunks) == len(words)
    assert [chunk.first for chunk in chunks] == [sum(c.numbers for c in chunks[:i]) for i in range(len(chunks))]
    from tasks import tsum_chunk  # the worker's task, run here

    integers = [word for word in words if "." not in word and "e" not in word.lower()]
    chunks = list(read_chunks(io.BytesIO(joined(integers, spaces)), chunk_bytes))
    assert sum(tsum_chunk(chunk.text) for chunk in chunks) == sum(parse_number(word) for word in integers)


@settings(max_examples=80, deadline=None)
@given(
    before=st.lists(GOOD_WORDS, max_size=40),
    bad=BAD_WORDS,
    after=st.lists(GOOD_WORDS, max_size=5),
    spaces=st.lists(SPACES, min_size=1, max_size=4),
    chunk_bytes=st.integers(min_value=8, max_value=200),
)
def test_a_bad_word_is_refused_with_its_line_and_number_before_its_chunk_is_yielded(
    before, bad, after, spaces, chunk_bytes
) -> None:
    data = joined([*before, bad, *after], spaces)
    yielded = []
    with pytest.raises(UsageError) as caught:
        for chunk in read_chunks(io.BytesIO(data), chunk_bytes):
            yielded.append(chunk)  # noqa: PERF402 - kept up to the error
    line = data[: data.index(bad.encode(), len(joined(before, spaces)))].count(b"\n") + 1
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"(line {line:,} of the input, number {len(before) + 1:,})" in message or (
        "a word of more than" in message and f"line {line:,}" in message
    ), message
    assert sum(chunk.numbers for chunk in yielded) <= len(before)  # no chunk holding the bad word came out


def test_the_chunk_task_keeps_integers_exact_and_takes_decimals() -> None:
    from tasks import tsum_chunk

    assert tsum_chunk(f"{10**4000} -1\n{-(10**4000)} 2") == 1
    assert tsum_chunk("1 2.5 -1e1\n+3") == -3.5


def test_call_reads_one_json_argument_from_stdin() -> None:
    assert parse_json_args(["1", "-", '"x"'], stdin=io.StringIO(json.dumps([1, 2, 3]))) == [1, [1, 2, 3], "x"]
    with pytest.raises(UsageError, match="more than one argument is '-'"):
        parse_json_args(["-", "-"], stdin=io.StringIO("1"))
    with pytest.raises(UsageError, match="stdin is not one JSON value"):
        parse_json_args(["-"], stdin=io.StringIO("[1, NaN]"))


NOWHERE = ("--broker-url", "amqp://u:p@127.0.0.1:1//", "--backend-url", "redis://127.0.0.1:1/0")


def test_a_bad_word_in_the_first_chunk_is_refused_before_any_connection() -> None:
    result = run_tcel("tsum", "-", *NOWHERE, input="1 2\n3 four 5\n")
    assert result.code == 2, result.stderr
    assert result.stderr.strip() == (
        "error: not a number: 'four' (line 2 of the input, number 4): give integers or decimals such as 2, -3 or 1.5"
    )


def test_a_too_long_word_is_refused_without_reading_it_all() -> None:
    result = run_tcel("tsum", "-", *NOWHERE, input="1\n" + "7" * 3_000_000)
    assert result.code == 2, result.stderr
    assert "a word of more than 4400 characters on line 2 of the input" in result.stderr
