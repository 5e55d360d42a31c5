"""Mistakes in a command line, a recipe, the data or a checkpoint, reported as one line
instead of a traceback, by every command: ``python -m zoo.fit`` through ``user_errors_as_one_line``,
the others (``zoo generate``, ``zoo forecast``, ``zoo show_augment``, ``competitions``, ...)
through ``run_command(main)``. An exception outside ``USER_ERRORS`` is a bug and keeps its traceback.

jsonargparse wraps an error raised in a constructor (``unknown model 'lenet6'``) in several
layers of "does not validate against any of the Union subtypes"; the line a user needs is the
innermost message together with the option it belongs to. ``ZOO_DEBUG=1`` keeps the traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator

from jsonargparse import ArgumentError
from lightning.fabric.utilities.exceptions import MisconfigurationException

from zoo.core.errors import ZooError

# what a wrong option, a missing, damaged or refused file, or a diverged run raises; any other
# exception is a bug and keeps its traceback (a ValueError from deep inside a library included)
USER_ERRORS = (ZooError, ArgumentError, OSError, MisconfigurationException)


def is_users_mistake(exc: BaseException) -> bool:
    """A ``USER_ERRORS`` exception, or jsonargparse's wrapping of one raised while it built an
    option's class (``Does not validate against any of the Union subtypes``, caused by the task's
    ``ConfigError``)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 50:
        if isinstance(exc, USER_ERRORS):
            return True
        if not _parser_wrapper(exc):
            return False
        seen.append(exc)
        exc = exc.__cause__
    return False


def one_line(exc: BaseException) -> str:
    """``--model.init_args.lr: expected float, got fast`` from jsonargparse's nested errors;
    other exceptions' own message, with line breaks folded."""
    chain, keys = [], []
    while exc is not None and exc not in chain and len(chain) < 50:
        chain.append(exc)
        if not _parser_wrapper(exc):
            break  # a message written for the user (naming the file or option): its causes are for ZOO_DEBUG
        exc = exc.__cause__  # "raise ... from": jsonargparse wraps the constructor's error this way
    for e in chain:
        m = re.match(r'Parser key "([^"]+)"', str(e))
        if m and m.group(1) not in keys:
            keys.append(m.group(1))
    text = re.sub(r":?\s*\n\s*- ", lambda m: ": " if m.group().startswith(":") else "; ", str(chain[-1]))
    message = " ".join(text.split()) or type(chain[-1]).__name__  # a listed problem per line: "a; b"
    message = re.sub(r"<class '([\w.]+)'>", r"\1", message)
    message = re.sub(r"^Expected a (.+?)\. Got value: (.*)$", r"expected \1, got \2", message)
    return f"--{'.init_args.'.join(keys)}: {message}" if keys else message


def _parser_wrapper(exc: BaseException) -> bool:
    """Whether ``exc`` is jsonargparse's wrapping of an error raised while it parsed or built an
    option (the cause holds the message a user needs); any other exception is the message itself,
    even one raised ``from`` a library error (a file's name and a codec's complaint)."""
    if isinstance(exc, ArgumentError) or type(exc).__module__.split(".")[0] == "jsonargparse":
        return True
    return re.match(r'(Parser key "|Does not validate against any of the Union subtypes|Problem with given '
                    r"class_path)", str(exc)) is not None  # fmt: skip


@contextlib.contextmanager
def user_errors_as_one_line(enabled: bool = True) -> Iterator[None]:
    """Turn ``USER_ERRORS`` raised inside the block into ``SystemExit("error: ...")``: Python
    prints that one line to stderr and exits with status 1."""
    try:
        yield
    except Exception as e:
        if not enabled or os.environ.get("ZOO_DEBUG") or not is_users_mistake(e):
            raise
        raise SystemExit(f"error: {one_line(e)} (ZOO_DEBUG=1 shows the traceback)") from None


def run_command(main: Callable[[], object]) -> None:
    """What ``if __name__ == "__main__":`` of every command calls: ``main()`` with the user's
    mistakes as one line (exit status 1), bugs with their traceback; third-party console lines
    a user cannot act on are dropped (``zoo.run.loggers.quiet_console``)."""
    from zoo.run.loggers import quiet_console  # here: Lightning's loggers module is slow to import

    quiet_console()
    with user_errors_as_one_line():
        main()
