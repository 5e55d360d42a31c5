"""Fine-tuning a pretrained backbone (course lecture 37, d2l "Fine-Tuning"; Yosinski et al., 2014,
"How transferable are features in deep neural networks?").

A timm backbone, built by name, with ImageNet weights (``pretrained=True``, fetched from the
Hugging Face hub or its local cache) or weights from a local file (``weights=``: a state_dict,
a timm/``torch.save`` file, a ``.safetensors`` file or a zoo/Lightning checkpoint); its
classifier is replaced by a new ``head`` for the new classes. The head is the submodule
``model.head``, so the task's ``head_lr_mult`` gives it its own learning rate (the course uses
10 times the backbone's). ``freeze_backbone=True`` trains the head alone.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.registry import TIMM_PREFIX, register_model
from zoo.run.checkpoint import checkpoint_file, load_checkpoint

# where checkpoints keep the weights, and the prefixes the backbone's keys may carry there
_NESTED = ("state_dict", "model", "state_dict_ema")
_PREFIXES = ("", "model.backbone.", "backbone.", "model.", "module.")


class FineTuned(nn.Module):
    """``head(backbone(x))``: the backbone returns pooled ``(B, num_features)`` features."""

    #: tells ``ZooTask.build_model`` not to re-initialise the (pretrained) weights
    keeps_weights = True

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, freeze_backbone: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(num_features, num_classes)
        nn.init.xavier_uniform_(self.head.weight)  # as the course initialises its new layer
        nn.init.zeros_(self.head.bias)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> FineTuned:
        super().train(mode)
        if self.freeze_backbone:  # a frozen backbone keeps its batch-norm statistics too
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, C, H, W) -> (B, num_features) -> (B, classes)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, unwrapped from a checkpoint's ``state_dict``/``model``."""
    path = checkpoint_file(Path(path).expanduser(), "weights")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    obj = load_checkpoint(path)  # weights_only: no code from the file runs
    for key in _NESTED:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights={str(path)!r}: expected a dict of tensors (a state_dict)")
    return obj


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> list[str]:
    """Load a file's weights into ``backbone``; keys it does not have (the old classifier) are
        skipped and returned. A first convolution for another number of input channels is adapted
    (timm's ``adapt_input_conv``); any other missing weight or other shape raises."""
    state = read_weights(path)
    own = backbone.state_dict()
    # the prefix under which most of the backbone's keys appear (checkpoints nest the model)
    prefix = max(_PREFIXES, key=lambda p: sum(p + k in state for k in own))
    missing = [k for k in own if prefix + k not in state]
    if missing:
        raise ValueError(
            f"weights={str(path)!r} does not fit this backbone: {len(missing)} of its {len(own)} "
            f"weights are missing, e.g. {missing[:3]} (is it a checkpoint of another architecture?)"
        )
    for k, v in own.items():
        w = state[prefix + k]
        if w.ndim == 4 and w.shape[0] == v.shape[0] and w.shape[2:] == v.shape[2:] and w.shape[1] != v.shape[1]:
            # an RGB stem for grey (or other) inputs: timm's adaptation, as for pretrained=True
            from timm.models import adapt_input_conv  # timm loads only when a backbone is built

            state[prefix + k] = adapt_input_conv(v.shape[1], w.float(), base_chans=w.shape[1]).to(w.dtype)
        elif w.shape != v.shape:
            raise ValueError(
                f"weights={str(path)!r}: {prefix + k} has shape {tuple(state[prefix + k].shape)}, "
                f"the backbone expects {tuple(v.shape)}"
            )
    backbone.load_state_dict({k: state[prefix + k] for k in own})
    wanted = {prefix + k for k in own}
    return [k for k in state if k not in wanted]


def timm_backbone(name: str, pretrained: bool, in_channels: int) -> nn.Module:
    """timm's ``name`` without its classifier (``num_classes=0``: pooled features)."""
    import timm  # imported here: the zoo's own models build without it (a second of start-up)

    name = name.removeprefix(TIMM_PREFIX)
    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, in_chans=in_channels)
    except OSError as e:  # hub unreachable and nothing in the local cache
        raise RuntimeError(
            f"cannot get pretrained weights for timm model {name!r} ({type(e).__name__}: {e}). Offline? "
            f"On a machine with internet run `torch.save(timm.create_model({name!r}, pretrained=True)"
            f".state_dict(), '{name}.pth')`, copy the file here and pass it as "
            f"`arch_kwargs: {{backbone: {name}, weights: /path/to/{name}.pth}}` instead of pretrained: true "
            "(or put the hub's cache in HF_HOME)."
        ) from e


@register_model
def finetune(
    num_classes: int = 2,
    in_channels: int = 3,
    backbone: str = "resnet18",
    pretrained: bool = False,
    weights: str | None = None,
    freeze_backbone: bool = False,
) -> FineTuned:
    """A timm ``backbone`` (e.g. ``resnet18``, as the course fine-tunes) with a new ``head``.

    Args:
        backbone: timm model name (``timm/`` prefix optional).
        pretrained: fetch timm's pretrained weights (needs the hub or its cache).
        weights: a local weights file for the backbone instead; its classifier is dropped.
        freeze_backbone: train the new head only.
    """
    if pretrained and weights:
        raise ValueError("give pretrained=True or weights=<file>, not both")
    net = timm_backbone(backbone, pretrained, in_channels)
    if weights:
        load_backbone_weights(net, weights)
    return FineTuned(net, net.num_features, num_classes, freeze_backbone)
