"""Plain torch.nn architectures, one family per file; importing a family registers its builders.

As torchvision's ``models/__init__.py`` does, this package holds its registry (``registry.py``)
and imports every family, so ``create_model`` and ``list_models`` know every name as soon as
anything of ``zoo.models`` is imported. A new family adds its line here.
"""

from zoo.models import (  # noqa: F401  (after the registry: each family registers into it)
    alexnet,
    bert,
    conv,
    decomposable_attention,
    densenet,
    detectors,
    fcn,
    finetune,
    googlenet,
    lenet,
    mlp,
    nadaraya_watson,
    nin,
    resnet,
    rnn,
    seq2seq,
    ssd,
    transformer,
    vgg,
    weights,
    word2vec,
)
from zoo.models.registry import TIMM_PREFIX, create_model, list_models, register_model

__all__ = ["TIMM_PREFIX", "create_model", "list_models", "register_model"]
