"""Pretrained weights: the one road from a weights name, a file, a cache or the course's zip to a
module. Every model that takes weights (fine-tuning, FCN, style transfer's VGG-19, the
detectors, BERT) reads them here; nothing else looks for weights.

``weights`` takes one of:

* a **torchvision weights name** of the model being built (``IMAGENET1K_V1``, ``DEFAULT``,
  ``COCO_V1``, or ``ResNet18_Weights.IMAGENET1K_V1``): the file torchvision's own enum names
  (``resnet18-f37072fd.pth``), in torch hub's cache, ``torch.hub.get_dir()/checkpoints``
  (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``): exactly where
  ``torchvision.models.resnet18(weights="IMAGENET1K_V1")`` puts it;
* a **path**: a state dict (``torch.save``, ``.safetensors``), a Lightning/zoo checkpoint (its
  ``state_dict``), or the course's zip (``bert.small.torch.zip``, SHA-1 checked when the name is
  the course's) or its unpacked folder (``pretrained.params`` beside ``vocab.json``);
* ``timm/<name>`` (for timm backbones): timm's pretrained file in the Hugging Face cache
  (``huggingface_hub.constants.HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``).

Every file is read through the zoo's one safe loader (``weights_only=True``) or safetensors: no
code in a file runs. A file that was found is named in one log line. A missing cached file is
fetched only when its host answers within ``PROBE_SECONDS`` and ``HF_HUB_OFFLINE`` is unset; else
``MissingWeights`` says, in one line, which file, every folder looked in and the one command that
fetches it on a machine with internet. A file that does not fit the module names its first three
missing, unexpected and misshapen tensors.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from zoo.core.checkpoint import CheckpointError, read_weights
from zoo.core.errors import ConfigError
from zoo.core.io import read_member

#: names built by timm rather than the zoo's registry (``timm/resnet34``)
TIMM_PREFIX = "timm/"

log = logging.getLogger(__name__)

#: a torchvision weights name: ``IMAGENET1K_V1``, ``DEFAULT`` or ``ResNet18_Weights.IMAGENET1K_V1``
_TORCHVISION_NAME = re.compile(r"(?:[A-Za-z0-9_]+_Weights\.)?([A-Z][A-Z0-9_]*)")
#: the prefixes a module's keys may carry in a checkpoint
_PREFIXES = ("", "model.", "model.backbone.", "backbone.", "module.", "features.", "model.model.")
#: how long a host may take to resolve before the machine counts as offline
PROBE_SECONDS = 2.0
#: the course's pretrained files (d2l's DATA_HUB, under COURSE_URL): the zip's name -> its SHA-1
COURSE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
COURSE_FILES = {
    "bert.small.torch.zip": "c72329e68a732bef0452e4b96a1c341c8910f81f",
    "bert.base.torch.zip": "225d66f04cae318b841a13d32af3acc165f253ac",
}
COURSE_PARAMS, COURSE_VOCAB = "pretrained.params", "vocab.json"


class MissingWeights(CheckpointError):
    """Weights that are neither where they were asked for nor fetchable now."""


# -- finding the file ----------------------------------------------------------------------------
def is_torchvision_name(spec: str) -> bool:
    return _TORCHVISION_NAME.fullmatch(spec) is not None and not Path(spec).exists()


def online(url: str) -> bool:
    """Whether ``url``'s host resolves within ``PROBE_SECONDS`` (never with ``HF_HUB_OFFLINE``):
    an offline machine's resolver can take a minute to give up, so it is asked in a thread."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    host, answer = urlparse(url).hostname or "", []

    def resolve() -> None:
        try:
            answer.append(bool(socket.getaddrinfo(host, 443)))
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS)
    return bool(answer and answer[0])


def torchvision_file(model: str, name: str) -> tuple[Path, str]:
    """The cached file and URL of torchvision's ``model`` weights ``name`` (e.g. ``resnet18``,
    ``IMAGENET1K_V1``), as torchvision's ``Weights`` enum names them."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(model)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"weights={name!r}: torchvision has no model {model!r} with named weights") from e
    match = _TORCHVISION_NAME.fullmatch(name)
    short = match.group(1) if match else name
    if short not in enum.__members__:
        raise ConfigError(f"weights={name!r}: torchvision's {enum.__name__} has {', '.join(enum.__members__)}")
    url = enum[short].url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name, url


def find_torchvision(model: str, name: str) -> Path:
    """torchvision's ``model`` weights ``name`` in torch hub's cache (fetched there when online)."""
    path, url = torchvision_file(model, name)
    if path.is_file():
        return path
    if online(url):
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = re.search(r"-([a-f0-9]+)\.", path.name)  # torchvision's names carry their SHA-256's head
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix.group(1) if prefix else None)
        return path
    raise MissingWeights(
        f"weights={name!r} for torchvision's {model}: {path.name} is not in torch hub's cache {path.parent} "
        f"(the one folder torchvision looks in: $TORCH_HOME/hub/checkpoints) and this machine is offline; on a "
        f"machine with internet run `curl -L --create-dirs -o {path} {url}` and copy the file to the same place "
        "here (or pass its path as weights)"
    )


def find_timm(name: str) -> Path:
    """timm's pretrained file for ``name`` (``resnet18``, ``resnet18.a1_in1k``) in the Hugging
    Face cache (fetched there when online)."""
    import timm
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    name = name.removeprefix(TIMM_PREFIX)
    if not timm.is_model(name):
        raise ConfigError(f"unknown timm model {name!r}; see timm.list_models()")
    cfg = timm.models.get_pretrained_cfg(name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        raise ConfigError(f"timm model {name!r} has no pretrained weights on the Hugging Face hub")
    files = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else ["model.safetensors",
                                                                                  "pytorch_model.bin"]  # fmt: skip
    for file in files:
        found = try_to_load_from_cache(repo, file)
        if isinstance(found, str):
            return Path(found)
    if online("https://huggingface.co"):
        return Path(hf_hub_download(repo, files[0]))
    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    raise MissingWeights(
        f"weights for timm/{name}: no {' or '.join(files)} of {repo} in the Hugging Face cache "
        f"{folder}/snapshots/*/ (HF_HUB_CACHE, or HF_HOME/hub) and this machine is offline; on a machine with "
        f"internet run `hf download {repo} {files[0]}` and copy {folder} to the same place here"
    )


# -- reading it ----------------------------------------------------------------------------------
def course_bundle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the course's zip or folder of ``pretrained.params`` and ``vocab.json``."""
    path = Path(path)
    if path.is_dir():
        return (path / COURSE_PARAMS).is_file()
    if path.name in COURSE_FILES:
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(Path(n).name == COURSE_PARAMS for n in z.namelist())


def check_course_file(path: str | os.PathLike) -> None:
    """A file with the name of one of the course's zips must have its SHA-1 (computed once per
    file version: ``zoo.fit`` checks before the data reads the vocabulary, the model again)."""
    path = Path(path)
    expected = COURSE_FILES.get(path.name)
    if expected is None or not path.is_file():
        return
    stat = path.stat()
    digest = _sha1(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if digest != expected:
        raise CheckpointError(
            f"{path}: SHA-1 {digest} is not the course's {expected} for {path.name} "
            f"({stat.st_size:,} bytes: a truncated or changed download); fetch it again on a machine with "
            f"internet: `curl -L -o {path.name} {COURSE_URL}{path.name}`"
        )


@functools.lru_cache(maxsize=8)
def _sha1(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def course_member(path: str | os.PathLike, name: str) -> bytes:
    """``pretrained.params`` or ``vocab.json`` of the course's folder or zip (SHA-1 checked
    when the zip's name is the course's)."""
    check_course_file(path)
    try:
        return read_member(path, name)
    except FileNotFoundError as e:
        raise MissingWeights(f"{e} (the course's layout: {COURSE_PARAMS} and {COURSE_VOCAB})") from e
    except ValueError as e:
        raise CheckpointError(str(e)) from e


def course_vocab(path: str | os.PathLike) -> list[str]:
    """The token list (``idx_to_token``) of the course's ``vocab.json`` in a folder or zip."""
    try:
        tokens = json.loads(course_member(path, COURSE_VOCAB))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: its {COURSE_VOCAB} is not JSON ({e})") from e
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)):
        raise CheckpointError(f"{path}: its {COURSE_VOCAB} is not a list of tokens")
    return tokens


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, a checkpoint (its ``state_dict``) or the course's zip/folder."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / COURSE_PARAMS).is_file():
        return read_weights(path / COURSE_PARAMS)
    if not path.exists():
        raise MissingWeights(f"weights={str(path)!r}: no such file")
    if not (path.is_file() and course_bundle(path)):
        return read_weights(path)
    params = course_member(path, COURSE_PARAMS)
    with tempfile.TemporaryDirectory() as folder:  # the one safe loader reads files
        tmp = Path(folder) / COURSE_PARAMS
        tmp.write_bytes(params)
        try:
            return read_weights(tmp)
        except CheckpointError as e:  # named after the user's zip, not the temporary copy
            raise CheckpointError(str(e).replace(str(tmp), f"{path} ({COURSE_PARAMS})")) from e


def resolve(spec: str, torchvision_model: str | None = None) -> Path:
    """The file ``spec`` names: a path, a torchvision weights name of ``torchvision_model``, or ``timm/<name>``."""
    if spec.startswith(TIMM_PREFIX):
        return find_timm(spec)
    if is_torchvision_name(spec):
        if torchvision_model is None:
            raise ConfigError(f"weights={spec!r}: a torchvision weights name, but this model is not torchvision's; "
                             "pass a weights file")  # fmt: skip
        return find_torchvision(torchvision_model, spec)
    return Path(spec).expanduser()


def load(spec: str | os.PathLike, torchvision_model: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict ``spec`` names (see ``resolve``), with one log line naming the file."""
    path = resolve(str(spec), torchvision_model)
    state = read_state_dict(path)
    log.warning("weights: loaded %s (%d tensors)", path, len(state))
    return state


# -- fitting it to a module ------------------------------------------------------------------------
def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def fit(module: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike, *,
        fresh: Callable[[str, torch.Size, torch.Size], bool] | None = None,
        adapt_stem: bool = True) -> tuple[list[str], list[str]]:  # fmt: skip
    """Load ``state`` into ``module``. Returns the file's keys it did not use (an old classifier)
    and the module's keys that kept their own values (``fresh``).

    The file's keys may carry a prefix (``model.``, ``backbone.``, ``features.``: the one under
    which most of the module's keys are found). A first convolution for another number of input
    channels is adapted (timm's ``adapt_input_conv``, with ``adapt_stem``); a tensor for which
    ``fresh(key, file_shape, own_shape)`` holds keeps its value when its shape differs (a head
    for another number of classes). Anything else missing or misshapen raises one line naming
    the first three of each."""
    own = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    prefix = max(_PREFIXES, key=lambda p: sum(p + k in state for k in own))
    missing = [prefix + k for k in own if prefix + k not in state]  # as the file would name them
    wanted = {prefix + k for k in own}
    unexpected = [k for k in state if k not in wanted and not k.endswith("num_batches_tracked")]
    # a part the module lacks (an old classifier) is left behind; more tensors inside a part it
    # has (layer1.2.* of a ResNet-34 for a ResNet-18) mean another architecture
    parts = {k.split(".")[0] for k in own}
    surplus = [k for k in unexpected if k.startswith(prefix) and k[len(prefix):].split(".")[0] in parts]
    loaded, kept, misshapen = {}, [], []
    for k, v in own.items():
        w = state.get(prefix + k)
        if w is None:
            continue
        if w.shape == v.shape:
            loaded[k] = w
        elif adapt_stem and w.ndim == 4 and w.shape[0] == v.shape[0] and w.shape[2:] == v.shape[2:]:
            from timm.models import adapt_input_conv  # an RGB stem for grey (or other) inputs

            loaded[k] = adapt_input_conv(v.shape[1], w.float(), base_chans=w.shape[1]).to(w.dtype)
        elif fresh is not None and fresh(k, w.shape, v.shape):
            kept.append(k)
        else:
            misshapen.append(f"{prefix + k} {tuple(w.shape)} vs {tuple(v.shape)}")
    if missing or misshapen or surplus:
        shown = surplus or unexpected
        found = [f"{len(missing)} of its {len(own)} tensors missing ({_first(missing)})" if missing else "",
                 f"{len(shown)} unexpected ({_first(shown)})" if shown else "",
                 f"{len(misshapen)} of another shape ({_first(misshapen)})" if misshapen else ""]  # fmt: skip
        raise CheckpointError(f"{source}: not weights of this {type(module).__name__}: "
                              + "; ".join(p for p in found if p) + " (weights of another architecture?)")  # fmt: skip
    module.load_state_dict(loaded, strict=False)
    return unexpected, kept


def load_into(module: nn.Module, spec: str | os.PathLike, torchvision_model: str | None = None,
              **kwargs) -> tuple[list[str], list[str]]:  # fmt: skip
    """``fit(module, load(spec))``: the common case."""
    return fit(module, load(spec, torchvision_model), spec, **kwargs)


def _timm_create(name: str, **kwargs) -> nn.Module:
    """``timm.create_model``; an argument timm's model lacks (a recipe's zoo-specific arch_kwargs) is
    one line naming it and the fix, not timm's TypeError."""
    import timm

    try:
        return timm.create_model(name, **kwargs)
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not bad:
            raise
        raise ConfigError(f"--model.init_args.arch_kwargs: timm/{name} takes no argument {bad.group(1)!r} (the "
                          "recipe's arch_kwargs are its zoo model's); replace them: --model.init_args.arch_kwargs "
                          "'{}' (or timm's own, e.g. '{drop_rate: 0.1}')") from None  # fmt: skip


def timm_model(name: str, weights: str | None = None, torchvision_model: str | None = None, **kwargs) -> nn.Module:
    """timm's ``name`` built with ``kwargs`` (``num_classes``, ``in_chans``). ``weights``:
    ``timm/<name>`` (timm's own file, from the Hugging Face cache, loaded through timm's own
    adaptation: classifier dropped or resized, stem channels) or a file (``fit``: a checkpoint's
    prefix found, the old classifier skipped)."""
    import timm

    name = name.removeprefix(TIMM_PREFIX)
    if not timm.is_model(name):
        raise ConfigError(f"unknown timm model {name!r}; see timm.list_models()")
    if weights is None or not weights.startswith(TIMM_PREFIX):
        model = _timm_create(name, pretrained=False, **kwargs)
        if weights is not None:
            load_into(model, weights, torchvision_model)
            model.keeps_weights = True  # ZooTask.build_model refuses an init that would overwrite them
        return model
    if weights.removeprefix(TIMM_PREFIX).split(".")[0] != name.split(".")[0]:
        raise ConfigError(f"weights={weights!r} are not timm's {name}'s")
    path = find_timm(weights)
    state = read_state_dict(path)
    log.warning("weights: loaded %s (%d tensors)", path, len(state))
    try:
        model = _timm_create(name, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, **kwargs)
    except RuntimeError as e:  # load_state_dict's "Missing key(s) ...": one line instead
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{path}: not weights of timm's {name}: {detail[:300]}") from e
    model.keeps_weights = True
    return model
