"""The zoo's own errors: what a user can fix (an option, a recipe, a data file, a checkpoint), each
raised with a message that names the thing and what was expected. Every command prints a
``ZooError`` as one line (``zoo.run.errors``); any other exception is a bug and keeps its
traceback. Each is also a ``ValueError`` (or ``RuntimeError``), the type Python code expects for
a bad value.
"""

from __future__ import annotations


class ZooError(Exception):
    """A mistake in what a user handed the zoo, explained in its message."""


class ConfigError(ZooError, ValueError):
    """An option or a recipe's value that the zoo will not build, or a combination that does not fit."""
