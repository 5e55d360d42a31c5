"""Collecting every problem found in a data set's files into one error.

A reader checks all files and rows before raising, so one run lists every missing column,
duplicate id, unknown label and bad image at once instead of one per rerun. ``DataError`` is a
``ValueError``, so the command-line error boundary prints it as one message, not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

from zoo.core.errors import ZooError

#: how many problems of one kind are spelled out before the rest are only counted
SHOWN = 20


class DataError(ZooError, ValueError):
    """Data files that are not as expected; ``problems`` lists each thing wrong."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where, self.problems = where, problems
        if len(problems) == 1:  # one line
            super().__init__(f"{where}: {problems[0]}")
        else:
            super().__init__(f"{len(problems)} problems in {where}:\n" + "\n".join(f"  - {p}" for p in problems))


class Problems:
    """A list of problems grouped by kind, so a thousand bad rows read as 20 names and a count."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def add_each(self, what: str, names: Iterable[object]) -> None:
        """``what: a, b, c (and N more)`` when ``names`` is not empty."""
        names = [str(n) for n in names]
        if names:
            more = f" (and {len(names) - SHOWN} more)" if len(names) > SHOWN else ""
            self.add(f"{what}: {', '.join(names[:SHOWN])}{more}")

    def raise_if_any(self, where: str) -> None:
        if self.items:
            raise DataError(where, self.items)
