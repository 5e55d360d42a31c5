"""Model registry: a name -> builder of a plain ``nn.Module``.

As in torchvision, architectures are builder functions decorated with ``@register_model``;
variants are further builders with other defaults, not config trees. Names that start with
``timm/`` are handed to ``timm.create_model`` so competitions can use any timm backbone; timm
is imported only then.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}
TIMM_PREFIX = "timm/"


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Register a builder under ``name`` (default: the function's name). A duplicate raises."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered (by {_MODELS[key].__module__})")
        _MODELS[key] = builder
        return builder

    return wrap(fn) if fn is not None else wrap


def _load_families() -> None:
    """Import ``zoo.models``, whose families register their builders (imported here, not at
    the top: the families import this module for ``register_model``)."""
    import zoo.models  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the zoo's own models that match a shell-style ``pattern``."""
    _load_families()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model (or ``timm/<name>``) with the builder's keyword arguments."""
    if name.startswith(TIMM_PREFIX):
        import timm

        if "in_channels" in kwargs:  # timm spells it in_chans
            kwargs["in_chans"] = kwargs.pop("in_channels")
        arch = name[len(TIMM_PREFIX):]
        if not timm.is_model(arch):
            raise ValueError(f"unknown timm model {arch!r}; see timm.list_models()")
        try:
            return timm.create_model(arch, **kwargs)
        except TypeError as e:  # an argument of a zoo builder (a recipe's arch_kwargs) that timm's model lacks
            bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
            if not bad:
                raise
            raise ValueError(f"--model.init_args.arch_kwargs: {name} takes no argument {bad.group(1)!r} (the recipe's "
                             "arch_kwargs are its zoo model's); replace them: --model.init_args.arch_kwargs '{}' "
                             "(or timm's own, e.g. '{drop_rate: 0.1}')") from None  # fmt: skip
    _load_families()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (zoo.registry.list_models() lists them)")
    return _MODELS[name](**kwargs)
