"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 28x28 grey images of 10 clothes.

Read from the four original IDX files (``.gz`` or unpacked), as Zalando ships them and as
torchvision lays them out (``<data_dir>/FashionMNIST/raw``). Where ``data_dir`` holds none of
them, Debian's ``dataset-fashion-mnist`` package location is tried, then a download
(``datamodules.download.find_data``); a ``data_dir`` holding only some of them is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.augment import eval_preprocessing
from datamodules.base import FoldedData, TensorDataset
from datamodules.download import Found, download, find_data
from zoo.core.errors import ZooError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# md5 of Zalando's .gz downloads (the list torchvision keeps)
GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
# sha256 of the decompressed IDX content: Debian recompressed the .gz files, so their bytes
# differ from Zalando's while the content is identical; this is what Debian's copy is checked by.
CONTENT_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip
MEAN, STD = 0.2860, 0.3530  # of the 60,000 training images, in [0, 1]


class IDXError(ZooError, ValueError):
    """A file that is not a valid IDX file of the expected kind."""


def decompress(path: Path) -> bytes:
    """A file's bytes, gunzipped when it ends in ``.gz``."""
    try:
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as e:  # zlib.error: a damaged deflate stream
        raise IDXError(f"{path}: cannot decompress ({e}); the file is damaged or cut short") from e


def read_idx(path: str | Path, raw: bytes | None = None) -> torch.Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor: ``(N,)`` labels or ``(N, H, W)``;
    ``raw`` is its content when already decompressed."""
    path = Path(path)
    raw = decompress(path) if raw is None else raw
    if len(raw) < 8:
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero, dtype, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        magic = struct.unpack(">I", raw[:4])[0]
        raise IDXError(
            f"{path}: bad magic number 0x{magic:08x}; expected 0x00000801 (labels) or "
            "0x00000803 (images) of unsigned bytes"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:  # cut inside the dimensions, which struct cannot unpack
        raise IDXError(f"{path}: {len(raw)} bytes is too short for an IDX header of {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(torch.tensor(dims).prod())
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise IDXError(f"{path}: {what}: header says {dims} ({expected} bytes), file has {len(raw)} bytes")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


class FashionMNIST(FoldedData):
    """Fashion-MNIST as batches of ``(B, 1, resize, resize)`` floats and ``(B,)`` labels.

    Args:
        data_dir: folder with the four IDX files, or torchvision's root (``FashionMNIST/raw``).
        batch_size: examples per batch.
        resize: side length to resize to (the course uses 224 for AlexNet/VGG/NiN, 96 for
            GoogLeNet/ResNet/DenseNet); ``None`` keeps 28.
        resize_on_device: resize after the batch reached the training device (a GPU resizes
            a batch of 128 to 224 px far faster than the loader's CPU workers).
        normalize: standardise pixels with the training set's mean and std (the course only
            scales them to [0, 1]).
        val_size: validation examples taken from the training set (a count or a fraction),
            by a generator seeded with ``seed``; 0 validates on the test set, as the course does.
        seed: seed of the validation split.
        fold, folds_file: validate on fold ``fold`` of ``folds_file`` (``id,fold``; the ids are the
            training images' positions, as ``zoo.fit --folds`` saves them) instead of ``val_size``.
        download: fetch the files when they are nowhere on disk.
        num_workers: DataLoader worker processes.
    """

    num_classes = 10
    in_channels = 1
    classes = CLASSES

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 256,
        resize: int | None = None,
        resize_on_device: bool = False,
        normalize: bool = False,
        val_size: int | float = 5000,
        seed: int = 0,
        download: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        fold: int | None = None,
        folds_file: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, fold=fold, folds_file=folds_file)
        self.data_dir = Path(data_dir).expanduser()
        self.resize, self.resize_on_device = resize, resize_on_device
        self.normalize = normalize
        self.val_size = val_size
        self.seed = seed
        self.download = download

    @property
    def image_size(self) -> int:
        return self.resize or 28

    @property
    def preprocessing(self) -> dict:
        """Recorded in checkpoints by the classification task, for ``zoo predict`` on image files:
        grey pixels scaled to [0, 1], resized (cv2's bilinear for files, torch's here) and
        standardised as here."""
        mean, std = (MEAN, STD) if self.normalize else (None, None)
        return eval_preprocessing("none", self.image_size, mean, std, in_channels=1)

    def fold_rows(self) -> tuple[list[str], list[int]]:
        """The ids (positions) and labels of the training images, for ``zoo.fit --folds``."""
        self.prepare_data()
        found = self._find(fetch=False)
        labels = self._read(found, FILES["train_labels"])
        return [str(i) for i in range(len(labels))], labels.tolist()

    def _find(self, fetch: bool) -> Found:
        d = self.data_dir
        files = {stem: (stem + ".gz", stem) for stem in FILES.values()}
        return find_data(
            "Fashion-MNIST",
            [(d, files), (d / "FashionMNIST" / "raw", files)],
            system=[(DEBIAN_DIR, files)],
            fetch=self._download if fetch else None,
            source=MIRROR,
            no_fetch="download=False" if not self.download else "not downloaded yet: prepare_data() fetches them",
            how="Get them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or from "
            "https://github.com/zalandoresearch/fashion-mnist, and pass --data.init_args.data_dir.",
        )

    def _download(self) -> None:
        target = self.data_dir / "FashionMNIST" / "raw"
        for stem, md5 in GZ_MD5.items():
            download(MIRROR + stem + ".gz", target / (stem + ".gz"), md5=md5)

    def prepare_data(self) -> None:
        self._find(fetch=self.download)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "_test", None) is not None:
            return
        found = self._find(fetch=False)  # prepare_data (rank 0 only) downloads; setup only reads
        arrays = {k: self._read(found, stem) for k, stem in FILES.items()}
        for split in ("train", "test"):
            n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
            if n_img != n_lab:
                raise IDXError(f"{found.folder}: {split} has {n_img} images but {n_lab} labels")
            if arrays[f"{split}_images"].ndim != 3 or arrays[f"{split}_labels"].ndim != 1:
                raise IDXError(f"{found.folder}: {split} image/label files are swapped or of the wrong kind")
            _check_labels(arrays[f"{split}_labels"], found.paths[FILES[f"{split}_labels"]])
        images = arrays["train_images"].unsqueeze(1)  # (N, 1, 28, 28) uint8
        labels = arrays["train_labels"].long()
        test = TensorDataset(arrays["test_images"].unsqueeze(1), arrays["test_labels"].long(),
                             transform=self._to_float)  # fmt: skip
        if self.folds_file is not None or self.val_size:
            ids = [str(i) for i in range(len(images))]  # a training image's id is its position
            tr, va = (torch.as_tensor(i) for i in self.split(ids, self.val_size, self.seed))
            self._train = TensorDataset(images[tr], labels[tr], transform=self._to_float)
            self._val = TensorDataset(images[va], labels[va], transform=self._to_float)
        else:
            self._train = TensorDataset(images, labels, transform=self._to_float)
            self._val = test
        self._test = test

    @staticmethod
    def _read(found: Found, stem: str) -> torch.Tensor:
        """One file; a system-wide copy is checked against the original content on the bytes
        decompressed for reading (Debian recompressed the ``.gz`` files, so only the content,
        not the download's md5, can be checked)."""
        path = found.paths[stem]
        raw = decompress(path)
        if found.source == "system" and hashlib.sha256(raw).hexdigest() != CONTENT_SHA256[stem]:
            raise IDXError(f"{path}: content differs from the original Fashion-MNIST file")
        return read_idx(path, raw)

    def _to_float(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float().div_(255)  # (B, 1, 28, 28)
        if not self.resize_on_device:
            x = self._resize(x)
        if self.normalize:  # per-pixel affine: the same before or after a bilinear resize
            x = (x - MEAN) / STD
        return x, y

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize and self.resize != x.shape[-1]:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not self.resize_on_device:
            return batch
        x, *rest = batch
        return (self._resize(x), *rest)


def _check_labels(labels: torch.Tensor, path: Path) -> None:
    bad = torch.nonzero(labels >= len(CLASSES)).flatten()
    if len(bad):
        i = int(bad[0])
        raise IDXError(
            f"{path}: label {int(labels[i])} at item {i} is outside 0-{len(CLASSES) - 1} "
            f"({len(bad)} of {len(labels)} labels out of range); expected a Fashion-MNIST class index"
        )
