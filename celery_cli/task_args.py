"""Task arguments: as typed on the command line (the numbers `add` and `tsum` take, integers exact and decimals
finite; the JSON literals `call` takes; when and where a task is delivered), and the one way tcel shows any
task's arguments (bounded JSON, the same in the worker's index)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from .errors import UsageError
from .names import MAX_MESSAGE_SIZE

Number = int | float

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# RabbitMQ keeps names starting with amq. for itself; a queue name is an AMQP short string (255 bytes).
_QUEUE = re.compile(r"(?!amq\.)[A-Za-z0-9_.:@-]{1,200}")
MAX_SECONDS = 10 * 365 * 86400.0  # a countdown or expiry of more than ten years is a typo


# Python refuses to convert integers of more digits between text and int (sys.get_int_max_str_digits), and
# the workers' JSON decoder with it: an integer argument can have at most this many.
INT_DIGITS_MAX = 4300


def parse_number(text: str) -> Number:
    """An int for integers of any size, a float for finite decimals; anything else is a usage error."""
    if _INTEGER.fullmatch(text):
        digits = len(text.lstrip("+-"))
        if digits > INT_DIGITS_MAX:
            raise UsageError(
                f"integer of {digits} digits: a task takes at most {INT_DIGITS_MAX}",
                hint="Python's limit on converting integers to and from text, which the workers' JSON decoder applies",
            )
        return int(text)
    if _DECIMAL.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
        raise UsageError(f"number out of range: {text!r}", hint="decimals must fit a 64-bit float")
    if text.startswith("--"):
        raise UsageError(f"no such option: {text}", hint="see --help")
    raise UsageError(f"not a number: {text!r}", hint="give integers or decimals such as 2, -3 or 1.5")


def parse_numbers(texts: Iterable[str]) -> list[Number]:
    return [parse_number(text) for text in texts]


SHOWN_LIMIT = 200


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """Arguments as tcel shows them everywhere: JSON, cut to `limit` characters with '...', without rendering
    all of a huge list first. worker_hooks.py has the same function for what workers index."""
    text = _json_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_prefix(value: Any, budget: int) -> str:
    """The JSON of `value`, or a prefix of it at least `budget` characters long."""
    if isinstance(value, (list, tuple)):
        text = "["
        for index, item in enumerate(value):
            if len(text) >= budget:
                return text
            text += (", " if index else "") + _json_prefix(item, budget - len(text))
        return text + "]"
    if isinstance(value, dict):
        text = "{"
        for index, (key, item) in enumerate(value.items()):
            if len(text) >= budget:
                return text
            text += (", " if index else "") + json.dumps(str(key)) + ": " + _json_prefix(item, budget - len(text))
        return text + "}"
    if isinstance(value, str):  # a long text is cut before it is rendered
        return json.dumps(value[:budget])
    return json.dumps(value, default=repr)


def parse_json_arg(text: str, raw_strings: bool = False) -> Any:
    """One positional argument of `call`: a JSON literal; with raw_strings, a word that is not JSON is a string."""
    try:
        return strict_json(text)
    except ValueError as exc:
        if text.startswith("--"):
            raise UsageError(f"no such option: {text}", hint="see --help; as a string it is JSON: '\"--x\"'") from None
        if raw_strings:
            return text
        raise UsageError(
            f"argument {text!r} is not JSON ({_reason(exc)})",
            hint="quote a string as JSON ('\"text\"'), or pass --raw-strings to send words as strings",
        ) from None


def parse_json_args(texts: Iterable[str], raw_strings: bool = False, stdin: IO[str] | None = None) -> list[Any]:
    """`call`'s positional arguments; one of them may be `-`: a JSON value read from `stdin` (an argument on
    the command line can hold at most 128 KiB, stdin any size up to the broker's message limit)."""
    texts = list(texts)
    if texts.count("-") > 1:
        raise UsageError("more than one argument is '-'", hint="stdin holds one JSON value: give '-' once")
    return [_stdin_json(stdin) if text == "-" else parse_json_arg(text, raw_strings) for text in texts]


def _stdin_json(stdin: IO[str] | None) -> Any:
    text = read_bounded(stdin) if stdin is not None else ""
    try:
        return strict_json(text)
    except ValueError as exc:
        raise UsageError(
            f"stdin is not one JSON value ({_reason(exc)})",
            hint="give the argument '-' a JSON value on stdin, such as [1, 2, 3]",
        ) from None


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """`--kwargs`: a JSON object."""
    if text is None:
        return {}
    try:
        value = strict_json(text)
    except ValueError as exc:
        raise UsageError(
            f"--kwargs {text!r} is not JSON ({_reason(exc)})", hint="give an object: '{\"key\": 1}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(f"--kwargs must be a JSON object, not {text!r}", hint="give an object: '{\"key\": 1}'")
    return value


def parse_seconds(text: str, option: str) -> float:
    """A finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a number of seconds", hint="give seconds such as 10 or 0.5"
        ) from None
    if not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        raise UsageError(f"{option} {text!r} is out of range", hint=f"give seconds from 0 to {MAX_SECONDS:.0f}")
    return value


def parse_time(text: str, option: str) -> datetime:
    """An ISO-8601 moment; without an offset it is the local time (what a person typing it means)."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise UsageError(
            f"{option} {text!r} is not an ISO-8601 time", hint="such as 2030-01-31T14:30 or 2030-01-31T14:30:00+00:00"
        ) from None


def parse_expires(text: str) -> float | datetime:
    """`--expires`: seconds from sending, or an ISO-8601 moment."""
    try:
        float(text)
    except ValueError:
        return parse_time(text, "--expires")
    return parse_seconds(text, "--expires")


def parse_queue(text: str) -> str:
    name = text.strip()
    if not _QUEUE.fullmatch(name):
        raise UsageError(
            f"invalid queue name {text!r}",
            hint="use letters, digits and _ . : @ -, at most 200, not starting with 'amq.'",
        )
    return name


def parse_queues(text: str) -> tuple[str, ...]:
    """`--queues a,b`: the queue names in order, each once."""
    names = [parse_queue(part) for part in text.split(",") if part.strip()] if text.strip() else []
    if not names:
        raise UsageError(f"--queues {text!r} names no queue", hint="such as --queues celery,emails")
    return tuple(dict.fromkeys(names))


def moment_after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# Deeper than this, JSON is refused: json.loads recurses once per level (about 1,000 ends in a RecursionError
# here, fewer in a worker's thread), and so do Celery's encoder and tcel's rendering of a result.
JSON_DEPTH_MAX = 100


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number that does not fit a float, and arrays and objects
    nested at most JSON_DEPTH_MAX deep. Raises ValueError."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"nested deeper than {JSON_DEPTH_MAX} levels") from None
    level = [value]
    for _ in range(JSON_DEPTH_MAX):
        level = [item for node in level if isinstance(node, (list, dict)) for item in _children(node)]
    if any(isinstance(node, (list, dict)) for node in level):
        raise ValueError(f"nested deeper than {JSON_DEPTH_MAX} levels")
    return value


def _children(node: list[Any] | dict[str, Any]) -> Iterable[Any]:
    return node.values() if isinstance(node, dict) else node


def read_bounded(stream: IO[str], limit: int = MAX_MESSAGE_SIZE) -> str:
    """All of `stream`, refused past `limit` bytes (the largest message the broker takes) without reading more."""
    text = stream.read(limit + 1)
    if len(text) > limit or len(text.encode()) > limit:
        raise UsageError(
            f"stdin was not sent: it holds more than the broker's limit of {limit / 2**20:.0f} MiB",
            hint="send a smaller value, or keep the data elsewhere and send where it is",
        )
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a 64-bit float")
    return value


def _reason(exc: ValueError) -> str:
    return str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
