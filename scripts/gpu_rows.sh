#!/usr/bin/env bash
# The GPU rows of docs/REPRODUCTION.md at the course's settings, on one GPU: AlexNet, VGG, NiN,
# GoogLeNet, ResNet-18, DenseNet (10 epochs at their course resolutions), the multi-GPU ResNet-18
# and the CIFAR-10 augmentation run, with bf16 autocast, channels-last weights and batches, the
# resize done on the GPU and 8 loader workers. Results (with the GPU's name) go into the table's
# cache and page like every other row; commit docs/REPRODUCTION.* and docs/reproduction/ after.
#
#   scripts/gpu_rows.sh                                      # on the GPU machine
#   scripts/gpu_rows.sh --max_batches 1 --budget 1 --workers 0 --out /tmp/dry/REPRODUCTION.md   # CPU dry run
#
# Further arguments go to scripts/reproduce.py (e.g. --data_root, --only, --force).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" scripts/reproduce.py --gpu --seeds 1 "$@"
