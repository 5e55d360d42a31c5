"""Numeric command-line options checked by the parser: ``type=number(int, 1, 64)`` in
``argparse.add_argument`` refuses ``0``, ``-3``, ``nan`` or ``1e9`` with one line naming the option
and its range, before the command loads or writes anything (never a silent default)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(kind: type[int] | type[float], low: float | None = None, high: float | None = None,
           low_open: bool = False) -> Callable[[str], int | float]:  # fmt: skip
    """An argparse ``type``: ``kind(text)`` (finite) in ``[low, high]`` (``(low, high]`` with
    ``low_open``); ``None`` leaves that end open."""
    if low is not None and high is not None:
        wanted = f"from {low} to {high}" if not low_open else f"above {low} and at most {high}"
    elif low is not None:
        wanted = f"above {low}" if low_open else f"at least {low}"
    else:
        wanted = f"at most {high}" if high is not None else "a number"
    name = "an integer" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name} {wanted}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) or (
            high is not None and value > high
        ):
            raise argparse.ArgumentTypeError(f"expected {name} {wanted}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse
