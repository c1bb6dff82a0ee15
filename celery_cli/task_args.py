"""Task arguments: parsing the numbers given to `add` and `tsum` (integers exact, decimals finite), and the
one way tcel shows any task's arguments (bounded JSON, the same in the worker's index)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from .errors import UsageError

Number = int | float

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_number(text: str) -> Number:
    """An int for integers of any size, a float for finite decimals; anything else is a usage error."""
    if _INTEGER.fullmatch(text):
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


def split_words(stream: Iterable[str]) -> list[str]:
    """The whitespace-separated words of a text stream such as stdin."""
    return [word for line in stream for word in line.split()]


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
    return json.dumps(value, default=repr)
