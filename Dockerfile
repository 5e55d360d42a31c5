# d2l-zoo on a GPU machine: `python -m zoo.fit` with the torch the project is tested with.
#
#   docker build -t d2l-zoo .
#   docker run --gpus all --ipc=host -v /data/fashion_mnist:/data:ro -v "$PWD/runs:/workspace/d2l-zoo/runs" \
#       -e WANDB_API_KEY d2l-zoo --config configs/resnet18_fashion_mnist.yaml --data.init_args.data_dir /data --wandb true
#
# The base is NVIDIA's plain CUDA image, not PyTorch's: PyTorch's images lag behind the torch the
# tests run on (their newest carried torch 2.5.1 when the tests ran on 2.14.1), while the PyPI
# wheel of torch 2.14.1 is built for CUDA 13.0 and brings its own CUDA libraries (cuBLAS, cuDNN,
# NCCL, ... as pip packages), so the image needs only what NVIDIA's `base` flavour adds to
# Ubuntu: the settings that let the NVIDIA container toolkit mount the host's driver (a
# driver for CUDA 13.0, R580 or newer). torch and torchvision are pinned to the tested versions
# (tests/test_docker.py checks the pins against the installed torch), then the project is
# installed exactly as the README's set-up installs it. No key is baked in: W&B's comes with
# `-e WANDB_API_KEY`.
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04
FROM ${BASE_IMAGE}
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
RUN pip install torch==${TORCH_VERSION} torchvision==${TORCHVISION_VERSION}

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
