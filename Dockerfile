# d2l-zoo on a GPU machine: `python -m zoo.fit` in PyTorch's official CUDA runtime image.
#
#   docker build -t d2l-zoo .
#   docker run --gpus all --ipc=host -v /data/fashion_mnist:/data:ro -v "$PWD/runs:/workspace/d2l-zoo/runs" \
#       -e WANDB_API_KEY d2l-zoo --config configs/resnet18_fashion_mnist.yaml --data.init_args.data_dir /data --wandb true
#
# The project is installed exactly as the README's set-up installs it (tests/test_docker.py
# checks that the two agree). The image's own torch and torchvision satisfy pyproject.toml, so
# pip keeps them and adds only the rest. No key is baked in: W&B's comes with `-e WANDB_API_KEY`.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
WORKDIR /workspace/d2l-zoo

COPY pyproject.toml README.md ./
COPY zoo/ zoo/
COPY datamodules/ datamodules/
COPY competitions/ competitions/
COPY configs/ configs/
COPY scripts/ scripts/
RUN pip install -e .

# runs/ and data are meant to be mounted from the host
VOLUME ["/workspace/d2l-zoo/runs"]
ENTRYPOINT ["python", "-m", "zoo.fit"]
CMD ["--help"]
