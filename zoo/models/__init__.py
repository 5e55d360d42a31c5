"""Plain torch.nn architectures, one family per file; importing a family registers its builders.

As torchvision's ``models/__init__.py`` does, this package imports every family, so
``zoo.registry`` knows every name once ``zoo.models`` is imported. A new family adds its line here.
"""

from zoo.models import (  # noqa: F401
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
