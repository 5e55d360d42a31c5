"""The one loader for every checkpoint or weights file the zoo reads.

``torch.load(..., weights_only=True)`` always: a ``.ckpt`` or ``.pth`` a user hands in is a
pickle, and with ``weights_only=False`` unpickling it may run any code. Failures name the file
and what was expected instead of torch's own message (``KeyError: 101``, ``Invalid argument``).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint or weights file that is missing, damaged, or not what a command expected."""


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", require: tuple[str, ...] = ()) -> dict:
    """The dict stored in ``path``, loaded with ``weights_only=True``; ``require`` lists keys
    it must hold (e.g. ``("state_dict", "hyper_parameters")`` for a Lightning checkpoint)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    # "from None": the one-line error boundary reports the innermost cause, which is torch's
    # long advice to set weights_only=False; the file and the reason are what a user needs
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"unsupported global:?\s*(?:GLOBAL\s+)?([\w.]+)", str(e), re.IGNORECASE)
        if not found:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or another format)") from None
        raise CheckpointError(f"{path}: refused to load, it holds more than tensors and plain values "
                              f"(it names {found.group(1)}); loading it could run code") from None  # fmt: skip
    except (RuntimeError, EOFError, KeyError, OSError, zipfile.BadZipFile, ValueError):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or another format)") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found a {type(obj).__name__}")
    missing = [k for k in require if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: not a zoo.fit checkpoint (no {', '.join(missing)})")
    return obj
