"""The one loader for every checkpoint or weights file the zoo reads.

``torch.load(..., weights_only=True)`` always: a ``.ckpt`` or ``.pth`` a user hands in is a
pickle, and with ``weights_only=False`` unpickling it may run any code. Failures name the file
and what was expected instead of torch's own message (``KeyError: 101``, ``Invalid argument``).

``load_task`` and ``load_datamodule`` rebuild what ``zoo.fit`` saved, in place of Lightning's
``load_from_checkpoint`` (which leaves ``weights_only`` to torch's default, unsafe before
torch 2.6): the class the checkpoint names (``_class_path``, recorded by LightningCLI) is
imported only from the zoo's own packages and must be the one the command expects; it is
built from the saved hyper-parameters, then given its saved state (a task's
``on_load_checkpoint``, e.g. a vocabulary, and its weights; a data module's ``load_state_dict``,
e.g. class names).
"""

from __future__ import annotations

import inspect
import os
import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from zoo.core.classes import ZOO_PACKAGES, resolve_class
from zoo.core.errors import ConfigError, ZooError

#: where checkpoints keep the weights (a Lightning, a timm or a torchvision training checkpoint)
_NESTED = ("state_dict", "model", "state_dict_ema")

T = TypeVar("T")


class CheckpointError(ZooError, ValueError):
    """A checkpoint or weights file that is missing, damaged, or not what a command expected."""


def checkpoint_file(path: str | os.PathLike, option: str | None = None) -> Path:
    """``path`` when it is a file; a folder or a missing path is a ``CheckpointError`` naming it
    (after ``option``, e.g. ``--ckpt_path``, when it came from one)."""
    path, shown = Path(path), f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise CheckpointError(f"{shown}: a folder, expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{shown}: no such checkpoint file")
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", require: tuple[str, ...] = ()) -> dict:
    """The dict stored in ``path``, loaded with ``weights_only=True``; ``require`` lists keys
    it must hold (e.g. ``("state_dict", "hyper_parameters")`` for a Lightning checkpoint)."""
    path = checkpoint_file(path)
    try:
        with warnings.catch_warnings():  # junk read as a pickle "protocol 113": the line below says what it is
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # any failure of the unpickler (it raises IndexError, KeyError, ... on junk)
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # a callable the pickle asked for: refused
        if isinstance(e, pickle.UnpicklingError) and found:
            raise CheckpointError(f"{path}: refused to load: it asks for {found.group(1)}, but a checkpoint "
                                  "holds only tensors and plain values (nothing in it was run)") from e  # fmt: skip
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or another format)") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found a {type(obj).__name__}")
    missing = [k for k in require if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: not a zoo.fit checkpoint (no {', '.join(missing)})")
    return obj


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``torch.save`` or ``.safetensors``), unwrapped from a
    checkpoint's ``state_dict`` / ``model`` / ``state_dict_ema`` (Lightning's, timm's, torchvision's
    training checkpoints)."""
    path = checkpoint_file(Path(path).expanduser(), "weights")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    obj = load_checkpoint(path)  # weights_only: no code from the file runs
    for key in _NESTED:
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict or a checkpoint's state_dict)")
    return obj


def load_task(path: str | os.PathLike, expected: type[T] | None = None, checkpoint: dict | None = None,
              needs: Sequence[str] | None = None) -> T:  # fmt: skip
    """The task of a ``zoo.fit`` checkpoint, on the CPU: an ``expected`` (or a subclass;
    default: any LightningModule of the zoo's packages). ``checkpoint``: the file at ``path``
    already read by ``load_checkpoint`` (a command that needs more of it reads it once).

    The data facts the task keeps (its ``data_state``: vocabularies, class names, ...) must be
    in the checkpoint, all of them or those in ``needs``, and fit the model, or one
    ``CheckpointError`` says which are missing or wrong."""
    import lightning as L  # here, not above: zoo.models read weights files through this module

    ckpt = checkpoint if checkpoint is not None else load_checkpoint(path, require=("state_dict", "hyper_parameters"))
    task = _build(path, ckpt["hyper_parameters"], expected or L.LightningModule, "task")
    task.on_load_checkpoint(ckpt)  # e.g. a language model's vocabulary
    state = getattr(task, "data_state", {})
    missing = [n for n in (state if needs is None else needs) if getattr(task, n, None) is None]
    if missing:
        raise CheckpointError(f"{path}: records no {', '.join(missing)}, which a {type(task).__name__} keeps from "
                              "the data module it trains on: train it with zoo.fit on a data module that has "
                              "them")  # fmt: skip
    problems = task.data_state_problems() if state else []
    if problems:
        raise CheckpointError(f"{path}: its data facts do not fit its model: {'; '.join(problems)}")
    try:
        task.load_state_dict(ckpt["state_dict"], strict=task.strict_loading)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{path}: its weights do not fit the {_describe(ckpt['hyper_parameters'])} "
                              f"its hyper-parameters describe ({detail})") from e  # fmt: skip
    return task


def load_datamodule(path: str | os.PathLike, expected: type[T] | None = None) -> T:
    """The data module of a ``zoo.fit`` checkpoint, with its saved state (not set up): an
    ``expected`` (or a subclass; default: any LightningDataModule of the zoo's packages)."""
    import lightning as L

    ckpt = load_checkpoint(path, require=("datamodule_hyper_parameters",))
    data = _build(path, ckpt["datamodule_hyper_parameters"], expected or L.LightningDataModule, "data module")
    name = type(data).__qualname__  # where Lightning saves a data module's state_dict
    if name in ckpt:
        data.load_state_dict(ckpt[name])
    return data


def _describe(hparams: dict[str, Any]) -> str:
    """``zoo.tasks.Regression (arch mlp_regressor)``: what a checkpoint holds, for messages."""
    arch = f" (arch {hparams['arch']})" if "arch" in hparams else ""
    return f"{hparams.get('_class_path', 'unnamed class')}{arch}"


def _build(path: str | os.PathLike, hparams: dict[str, Any], expected: type, what: str) -> Any:
    """An ``expected`` built from ``hparams``: of the class their ``_class_path`` names, which
    must be ``expected`` or a subclass, from ``ZOO_PACKAGES`` (``zoo.core.classes``)."""
    class_path = hparams.get("_class_path")
    if class_path is None:  # built in Python rather than by zoo.fit: only a named class will do
        if expected.__module__.split(".")[0] not in ZOO_PACKAGES:
            raise CheckpointError(f"{path}: names no {what} class (not saved by zoo.fit)")
        cls = expected
    else:
        try:
            cls = resolve_class(class_path, expected, f"{path}: its {what}", zoo_only=True, shown=_describe(hparams))
        except ConfigError as e:
            raise CheckpointError(str(e)) from None
    params = inspect.signature(cls).parameters
    any_key = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in hparams.items() if not k.startswith("_") and (any_key or k in params)}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild its {_describe(hparams)} {what}: {e}") from e
