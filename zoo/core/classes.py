"""Classes named in a file: a recipe's ``class_path`` (``data: {class_path: ..., init_args: ...}``)
and a checkpoint's ``_class_path`` (what LightningCLI recorded), imported under the rules
``zoo.fit`` applies, by every reader of such files.

A name is imported only when it is the class the reader expects (or a subclass): a recipe whose
``data.class_path`` names ``subprocess.Popen`` is refused before anything is called. A name read
from a checkpoint must moreover come from the zoo's own packages, since importing a module runs
it and a checkpoint is a file a stranger may hand over.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from zoo.core.errors import ConfigError

#: the zoo's own packages: the only ones a checkpoint's ``_class_path`` may import from
ZOO_PACKAGES = ("zoo", "datamodules", "competitions")

T = TypeVar("T")


def resolve_class(class_path: Any, expected: type[T], where: str, zoo_only: bool = False,
                  shown: str | None = None) -> type[T]:  # fmt: skip
    """The class ``class_path`` (``"package.module.Name"``) names: ``expected`` or a subclass of it,
    else a ``ConfigError`` ``"<where> is <shown>, not a <expected>"`` (``where``: the file and key
    it was read from; ``shown``: how to call the class, default ``class_path``). With ``zoo_only``,
    a module outside ``ZOO_PACKAGES`` is refused without being imported."""
    shown = shown or str(class_path)
    module, _, name = str(class_path).rpartition(".")
    if zoo_only and module.split(".")[0] not in ZOO_PACKAGES:
        raise ConfigError(f"{where} is {shown}, outside the zoo's packages {', '.join(ZOO_PACKAGES)}; "
                          "refused to import it")  # fmt: skip
    try:
        cls = getattr(importlib.import_module(module), name, None) if module and name else None
    except ImportError:
        cls = None
    if not isinstance(cls, type):
        raise ConfigError(f"{where} is {shown}, a class this zoo does not have (expected a {expected.__name__})")
    if not issubclass(cls, expected):
        raise ConfigError(f"{where} is {shown}, not a {expected.__name__}; refused to build it")
    return cls


def build(cls: type[T], kwargs: Mapping[str, Any], where: str) -> T:
    """``cls(**kwargs)`` once the keywords fit its signature (a wrong one is a ``ConfigError``
    naming ``where``, not a ``TypeError`` from inside the constructor)."""
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e} ({cls.__module__}.{cls.__qualname__})") from None
    return cls(**kwargs)


def from_section(config: Any, key: str, expected: type[T], path: str | os.PathLike,
                 overrides: Mapping[str, Any] | None = None) -> T:  # fmt: skip
    """The object a recipe's ``key`` section (``{class_path, init_args}``, as ``zoo.fit`` writes it)
    describes, built with ``overrides`` on its ``init_args``; ``config`` is the recipe's content
    (``zoo.core.io.read_yaml`` of ``path``)."""
    section = config.get(key) if isinstance(config, dict) else None
    if not isinstance(section, dict) or "class_path" not in section:
        raise ConfigError(f"{path}: no {key}.class_path section (expected a zoo.fit recipe)")
    init_args = section.get("init_args") or {}
    if not isinstance(init_args, dict):
        raise ConfigError(f"{path}: {key}.init_args is a {type(init_args).__name__}, expected a mapping")
    cls = resolve_class(section["class_path"], expected, f"{path}: {key}.class_path")
    return build(cls, {**init_args, **(overrides or {})}, f"{path}: {key}.init_args")
