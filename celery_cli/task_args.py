"""Arguments of the tutorial tasks: the numbers given to `add` and `tsum` (integers exact, decimals finite)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

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
