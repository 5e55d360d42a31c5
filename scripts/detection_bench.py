"""Training throughput of TinySSD: the zoo (``zoo.tasks.Detection`` under a Lightning Trainer, on
``datamodules.YoloDetection``) against the course's own pipeline (d2l 1.0.3's ``multibox_prior``
and ``multibox_target`` in the course's training loop of section 13.7), back to back in one
process, on the same TinySSD module (same initial weights) and the same images.

    python -m scripts.detection_bench --d2l_path /tmp/d2l_peer [--data_dir ../shared/data/banana_yolo_roboflow]
        [--epochs 3] [--batch_size 32] [--image_size 256] [--threads N] [--json runs/bench/detection_bench.json]

The d2l package pins old numpy and pandas; install it beside the project's environment without
them: ``pip install --no-deps --target /tmp/d2l_peer d2l==1.0.3 ipython matplotlib-inline traitlets``
(see ../shared/peers/README.md). The course's package has no TinySSD class: its loop here runs
the zoo's TinySSD blocks and heads with the course's forward, whose anchors come from
``d2l.multibox_prior``. Both sides read the images decoded and resized once, held in memory
(the course's ``load_data_bananas`` loads its images up front too); the first epoch of each is a
warm-up and not timed. Prints images per second of each, their ratio (target: zoo >= 1.0x the
course) and each side's last-epoch class error and bbox MAE (the course's figures).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.options import add_d2l_path, add_dry_run, dry_run_done, require, use_d2l  # noqa: E402
from zoo.core.io import read_yaml, write_json  # noqa: E402
from zoo.run.errors import run_command  # noqa: E402


def course_forward(d2l, net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's ``TinySSD.forward`` over the zoo's modules: anchors from ``d2l.multibox_prior``,
    predictions flattened channels-last and concatenated (``concat_preds``)."""
    anchors, cls_preds, bbox_preds = [], [], []
    for block, cls_head, box_head, sizes in zip(net.blocks, net.class_heads, net.box_heads, net.sizes):
        x = block(x)
        anchors.append(d2l.multibox_prior(x, sizes=list(sizes), ratios=list(net.ratios)))
        cls_preds.append(cls_head(x).permute(0, 2, 3, 1).flatten(start_dim=1))
        bbox_preds.append(box_head(x).permute(0, 2, 3, 1).flatten(start_dim=1))
    cls = torch.cat(cls_preds, dim=1)
    return torch.cat(anchors, dim=1), cls.reshape(cls.shape[0], -1, net.num_classes + 1), torch.cat(bbox_preds, dim=1)


def course_loop(d2l, net, images: torch.Tensor, labels: torch.Tensor, args) -> tuple[float, float, float]:
    """The course's training loop of section 13.7; returns (images/s over the timed epochs, class
    error, bbox MAE of the last epoch)."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), args.batch_size,
                                         shuffle=True)  # fmt: skip
    trainer = torch.optim.SGD(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    net.train()
    seen, seconds = 0, 0.0
    for epoch in range(args.epochs + 1):
        wrong = n_cls = abs_err = n_box = 0.0
        start = time.perf_counter()
        for features, target in loader:
            trainer.zero_grad()
            anchors, cls_preds, bbox_preds = course_forward(d2l, net, features)
            bbox_labels, bbox_masks, cls_labels = d2l.multibox_target(anchors, target)
            b, c = cls_preds.shape[0], cls_preds.shape[2]
            cls = F.cross_entropy(cls_preds.reshape(-1, c), cls_labels.reshape(-1), reduction="none")
            bbox = F.l1_loss(bbox_preds * bbox_masks, bbox_labels * bbox_masks, reduction="none").mean(dim=1)
            loss = cls.reshape(b, -1).mean(dim=1) + bbox
            loss.mean().backward()
            trainer.step()
            wrong += float((cls_preds.argmax(dim=-1) != cls_labels).sum())
            n_cls += cls_labels.numel()
            abs_err += float(((bbox_labels - bbox_preds) * bbox_masks).abs().sum())
            n_box += bbox_labels.numel()
        if epoch:  # the first epoch warms up
            seconds += time.perf_counter() - start
            seen += len(images)
    return seen / seconds, wrong / n_cls, abs_err / n_box


class EpochTimer:
    """Lightning callback: training seconds of every epoch but the first."""

    def __init__(self) -> None:
        import lightning as L

        class _Timer(L.Callback):
            def on_train_epoch_start(cb, trainer, module):  # noqa: N805
                cb.start = time.perf_counter()

            def on_train_epoch_end(cb, trainer, module):  # noqa: N805
                if trainer.current_epoch > 0:
                    self.seconds += time.perf_counter() - cb.start

        self.seconds, self.callback = 0.0, _Timer()


def zoo_loop(task, data, args) -> tuple[float, float, float]:
    """The zoo's task under a Lightning Trainer (no validation, logger or checkpoints: the
    training loop only); returns images/s over the timed epochs and the last epoch's figures."""
    import lightning as L

    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=args.epochs + 1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer.callback],
                        accelerator="cpu", num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(task, datamodule=data)
    figures = trainer.callback_metrics
    return (
        len(data._train) * args.epochs / timer.seconds,
        float(figures["train/class_err"]),
        float(figures["train/bbox_mae"]),
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", default=str(ROOT.parent / "shared/data/banana_yolo_roboflow"))
    add_d2l_path(p, required=True)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--limit_images", type=int, default=None, help="train on the first N images only (a smoke run)")
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", default=None, help="also write the results here")
    add_dry_run(p)
    args = p.parse_args(argv)
    use_d2l(args.d2l_path)
    require(data_dir=args.data_dir)
    if args.dry_run:
        return dry_run_done(f"TinySSD on {args.data_dir}")
    if args.threads:
        torch.set_num_threads(args.threads)
    d2l = importlib.import_module("d2l.torch")

    from datamodules import YoloDetection
    from zoo.tasks import Detection

    data = YoloDetection(args.data_dir, image_size=args.image_size, augment="none", cache=True,
                         batch_size=args.batch_size)  # fmt: skip
    data.setup("fit")
    # the course's loop takes one box per image (its bananas have one each): both loops train on
    # the images that hold exactly one
    records = data._train.records
    one_box = [r for r in records if torch.tensor(r.boxes).reshape(-1, 4).shape[0] == 1]
    data._train.records = one_box[: args.limit_images] if args.limit_images else one_box
    print(f"{len(data._train.records)} of {len(records)} training images hold exactly one box: both loops train "
          "on those", flush=True)  # fmt: skip
    samples = [data._train[i] for i in range(len(data._train))]  # decoded and resized once (cached)
    images = torch.stack([x for x, _ in samples])  # (N, 3, S, S)
    # (N, 1, 5): class and corners as fractions, as the course's load_data_bananas gives them
    labels = torch.stack([torch.cat([t["labels"].float()[:, None], t["boxes"] / args.image_size], 1)
                          for _, t in samples])  # fmt: skip

    torch.manual_seed(0)
    # ours as the recipe trains it (its memory layout too); the course's copy keeps PyTorch's default
    layout = read_yaml(ROOT / "configs" / "tiny_ssd_banana.yaml")["model"]["init_args"].get("channels_last", False)
    task = Detection("tiny_ssd", num_classes=1, optimizer="sgd", lr=args.lr, weight_decay=args.weight_decay,
                     channels_last=layout)  # fmt: skip
    course_net = Detection("tiny_ssd", num_classes=1).model
    course_net.load_state_dict(task.model.state_dict())  # the same initial weights, in the default layout
    print(f"{len(images)} images of {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{args.epochs} timed epochs after a warm-up, {torch.get_num_threads()} threads", flush=True)  # fmt: skip
    course = course_loop(d2l, course_net, images, labels, args)
    print(f"course (d2l multibox_prior/multibox_target loop): {course[0]:.1f} images/s, "
          f"class err {course[1]:.2e}, bbox mae {course[2]:.2e}", flush=True)  # fmt: skip
    ours = zoo_loop(task, data, args)
    print(f"zoo (Detection task, Lightning Trainer):           {ours[0]:.1f} images/s, "
          f"class err {ours[1]:.2e}, bbox mae {ours[2]:.2e}", flush=True)  # fmt: skip
    ratio = ours[0] / course[0]
    print(f"zoo / course: {ratio:.2f}x (target >= 1.0x)")
    result = {"zoo_images_per_s": ours[0], "course_images_per_s": course[0], "ratio": ratio,
              "zoo_class_err": ours[1], "zoo_bbox_mae": ours[2], "course_class_err": course[1],
              "course_bbox_mae": course[2], "images": len(images), "epochs": args.epochs,
              "threads": torch.get_num_threads()}  # fmt: skip
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_command(main)
