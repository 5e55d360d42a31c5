"""Model registry: a name -> builder of a plain ``nn.Module``.

As in torchvision, architectures are builder functions decorated with ``@register_model``;
variants are further builders with other defaults, not config trees. Names that start with
``timm/`` are built by timm (through ``zoo.models.weights``, which finds their pretrained
files), so competitions can use any timm backbone; timm is imported only then.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.weights import TIMM_PREFIX, timm_model

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Register a builder under ``name`` (default: the function's name). A duplicate raises."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _MODELS:
            raise ConfigError(f"model {key!r} is already registered (by {_MODELS[key].__module__})")
        _MODELS[key] = builder
        return builder

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the zoo's own models that match a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model (or ``timm/<name>``) with the builder's keyword arguments."""
    if name.startswith(TIMM_PREFIX):  # weights (pretrained=True: timm's own file) through zoo.models.weights
        if "in_channels" in kwargs:  # timm spells it in_chans
            kwargs["in_chans"] = kwargs.pop("in_channels")
        weights = kwargs.pop("weights", None)
        if kwargs.pop("pretrained", False):
            if weights:
                raise ConfigError(f"{name}: give pretrained=True or weights=<file>, not both")
            weights = name
        return timm_model(name, weights, **kwargs)
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} (zoo.models.list_models() lists them)")
    return _MODELS[name](**kwargs)
