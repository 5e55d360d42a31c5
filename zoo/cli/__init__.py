"""The zoo's commands, one module each, run as ``python -m zoo <command>`` (``zoo/__main__.py``)
or as ``zoo <command>`` once installed; ``python -m zoo.fit`` is kept as the training command's
own name. Each command is thin: parse, load through ``zoo.core``, call a task or a library
function, print or write."""

#: command -> what it does, for ``python -m zoo --help`` (the module is ``zoo.cli.<command>``)
COMMANDS = {
    "fit": "train any task on any data module from a YAML recipe, then test",
    "predict": "classify your own image files with a trained image classifier",
    "export": "an image classifier's checkpoint as an ONNX or TorchScript file",
    "detect": "detect objects in images with a trained detection checkpoint",
    "segment": "segment images with a trained segmentation checkpoint",
    "translate": "translate sentences with a trained seq2seq checkpoint",
    "generate": "continue a prefix with a trained language model",
    "nli": "entailment, contradiction or neutral for a premise and a hypothesis",
    "similar": "the nearest words of a trained word2vec model",
    "forecast": "plot a sequence model's predictions against the noisy sine",
    "style_transfer": "neural style transfer from a pretrained VGG-19",
    "show_augment": "a PNG grid of augmented training samples",
    "compare_optimizers": "one run per optimizer, then one plot of every loss curve",
}
