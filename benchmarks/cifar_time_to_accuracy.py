"""Time to accuracy on CIFAR-10 (issue 5, benchmark 2): cnnlab's trainer against a plain reference loop.

    python benchmarks/cifar_time_to_accuracy.py --data-dir ../shared/data/cifar10 [--out runs/tta]
        [--recipe resnet-cifar-paper] [--max-steps N] [--ref-epochs 2] [--workers 8] [--time-limit S]
        [--device auto] [--test-images N]
    python benchmarks/cifar_time_to_accuracy.py --data-dir DATA --eval-run RUN   # accuracy only

Both sides train ResNet-20 with the same recipe (default `resnet-cifar-paper`: SGD 0.1, momentum
0.9, wd 1e-4, batch 128, 45k/5k split, flips and 4-pixel crops, lr ÷10 at 32k and 48k iterations):
- cnnlab: `cnnlab train resnet20 --recipe R` to the end of the recipe (or --max-steps), resumable
  in --time-limit slices (run the command again); wall time to the end = the trainer's own clock,
  carried across resumes, plus this command's start-up.
- reference: a torchvision-style `Dataset` of PIL images with torchvision transforms and a
  `DataLoader` with --workers processes (pinned memory), the same model, optimizer, schedule and
  precision (bf16 autocast and channels_last on CUDA), timed for --ref-epochs epochs (the full
  recipe would take most of a GPU slot); measured once per OUT (reference.json), not in every slice.
Reports training seconds per epoch for both (45,000 images / measured images/s) and their ratio,
cnnlab's wall time to the end of the recipe, and the test accuracy of both models on the exact
test set and on the test set passed through Pillow JPEG at quality 75 (the shared training images
carry JPEG error; see ../shared/data/README.md). Writes OUT/tta.json and OUT/tta.md.
`--max-steps` and `--test-images` give a CPU smoke mode; the numbers then mean nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resumable import state_of, train_slice  # noqa: E402

MODEL = "resnet20"
PAPER_TEST_ACCURACY = {"resnet20": 91.25, "resnet56": 93.03}  # He et al. 2016, table 6


def jpeg(images: np.ndarray, quality: int = 75) -> np.ndarray:
    """uint8 N x 3 x H x W through Pillow JPEG at `quality` and back."""
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image.transpose(1, 2, 0)).save(buffer, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer).convert("RGB")).transpose(2, 0, 1)
    return out


def test_sets(data_dir, limit):
    from cnnlab.data.readers import load_arrays

    x, y, _ = load_arrays("cifar10", "test", data_dir)
    x, y = x[:limit], y[:limit]
    return {"exact": (x, y), "jpeg75": (jpeg(x), y)}


def accuracy(model, sets, device) -> dict:
    """Top-1 (%) of `model` on each test set, with the training data's normalisation, fp32."""
    from cnnlab.data.info import dataset_info

    info = dataset_info("cifar10")
    mean = torch.tensor(info.mean, device=device)[None, :, None, None]
    std = torch.tensor(info.std, device=device)[None, :, None, None]
    model = model.to(device).eval()
    result = {}
    with torch.inference_mode():
        for name, (x, y) in sets.items():
            correct = 0
            for lo in range(0, len(y), 1000):
                batch = torch.from_numpy(x[lo:lo + 1000]).to(device).float().div_(255)
                logits = model((batch - mean) / std)
                correct += int((logits.argmax(1).cpu() == torch.from_numpy(y[lo:lo + 1000])).sum())
            result[name] = 100 * correct / len(y)
    return result


def cnnlab_side(args, run: Path) -> dict:
    flags = ["--recipe", args.recipe, "--data-dir", str(args.data_dir)]
    flags += ["--max-steps", str(args.max_steps)] if args.max_steps else []
    started = time.perf_counter()
    finished = train_slice(MODEL, run, args.device, flags, args.time_limit)
    command_wall = time.perf_counter() - started
    from cnnlab.run import read_metrics

    train = [r for r in read_metrics(run) if r["split"] == "train"]
    return {"finished": finished, "epochs": len(train), "steps": train[-1]["step"] if train else 0,
            "train_s_per_epoch": float(np.median([TRAIN_IMAGES / r["images_per_s"] for r in train])) if train else None,
            "trainer_wall_s": train[-1]["time"] if train else None, "this_command_wall_s": command_wall}


TRAIN_IMAGES = 45_000  # the paper recipe's training split; seconds per epoch are 45k / images per second


class CifarImages(torch.utils.data.Dataset):
    """torchvision's CIFAR10 in miniature: PIL image + transform per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images.transpose(0, 2, 3, 1), labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_side(args, settings, device) -> tuple[dict, torch.nn.Module]:
    """The plain loop: DataLoader with workers, the recipe's optimizer and schedule, per-step lr."""
    import torchvision.transforms as T

    import cnnlab
    from cnnlab.data.info import dataset_info
    from cnnlab.data.batching import holdout
    from cnnlab.data.readers import load_arrays

    info = dataset_info("cifar10")
    x, y, _ = load_arrays("cifar10", "train", args.data_dir)
    train_idx, _ = holdout(y, settings.val_split)  # the same 45k images cnnlab trains on
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(info.mean, info.std)])
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(CifarImages(x[train_idx], y[train_idx], transform), settings.batch_size,
                                         shuffle=True, num_workers=args.workers, pin_memory=cuda,
                                         persistent_workers=args.workers > 0, drop_last=False)
    torch.manual_seed(settings.seed)
    model = cnnlab.create(MODEL, num_classes=10).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay, **({"fused": True} if cuda else {}))
    milestones = [int(m) for m in settings.milestones]  # the paper recipe counts them in iterations
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, settings.gamma)
    limit = min(args.ref_epochs * len(loader), args.max_steps or len(loader) * args.ref_epochs)
    step, epoch_rates = 0, []
    while step < limit:
        images, started = 0, time.perf_counter()
        for xb, yb in loader:
            if step >= limit:
                break
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step, images = step + 1, images + len(yb)
        if cuda:
            torch.cuda.synchronize()
        epoch_rates.append(images / (time.perf_counter() - started))
    steady = epoch_rates[1:] or epoch_rates  # the first epoch also starts the workers
    return {"epochs": len(epoch_rates), "steps": step, "train_s_per_epoch": TRAIN_IMAGES / float(np.median(steady)),
            "first_epoch_s": TRAIN_IMAGES / epoch_rates[0]}, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="CIFAR-10 (as for cnnlab train --data-dir)")
    parser.add_argument("--out", type=Path, default=Path("runs/tta"))
    parser.add_argument("--recipe", default="resnet-cifar-paper")
    parser.add_argument("--max-steps", type=int, help="stop both sides after N steps (smoke mode)")
    parser.add_argument("--ref-epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--time-limit", type=float, help="seconds for cnnlab's run in this call (resumable)")
    parser.add_argument("--test-images", type=int, help="evaluate on the first N test images only (smoke mode)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-run", type=Path, metavar="RUN",
                        help="only evaluate RUN's last checkpoint on the exact and the JPEG q75 test set")
    args = parser.parse_args()
    from cnnlab.run.model import load_model
    from cnnlab.training.settings import resolve_settings

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    args.device = str(device)
    if args.eval_run:
        sets = test_sets(args.data_dir, args.test_images)
        top1 = accuracy(load_model(args.eval_run, "last")[0], sets, device)
        (args.eval_run / "eval-exact-jpeg75.json").write_text(json.dumps(top1) + "\n")
        print(f"test top-1 of {args.eval_run} ({len(sets['exact'][1])} images): exact {top1['exact']:.2f}%, "
              f"JPEG q75 {top1['jpeg75']:.2f}%")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    settings, _ = resolve_settings(MODEL, args.recipe, {})
    ours = cnnlab_side(args, args.out / "cnnlab")
    sets = test_sets(args.data_dir, args.test_images)
    if state_of(args.out / "cnnlab") != "new":
        ours["test_top1"] = accuracy(load_model(args.out / "cnnlab", "last")[0], sets, device)
    # the reference is measured once per OUT (and device): later slices of cnnlab's run reuse it
    saved = args.out / "reference.json"
    key = {"device": str(device), "max_steps": args.max_steps, "ref_epochs": args.ref_epochs, "workers": args.workers,
           "test_images": args.test_images, "recipe": args.recipe}
    theirs = json.loads(saved.read_text()) if saved.exists() else None
    if theirs is None or theirs.get("key") != key:
        theirs, reference_model = reference_side(args, settings, device)
        theirs["test_top1"] = accuracy(reference_model, sets, device)
        saved.write_text(json.dumps(dict(theirs, key=key)) + "\n")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.machine()} CPU"
    result = {"date": time.strftime("%Y-%m-%d"), "device": where, "torch": torch.__version__, "recipe": args.recipe,
              "max_steps": args.max_steps, "test_images": len(sets["exact"][1]), "cnnlab": ours, "reference": theirs,
              "paper_test_top1": PAPER_TEST_ACCURACY[MODEL]}
    (args.out / "tta.json").write_text(json.dumps(result, indent=1) + "\n")
    ratio = theirs["train_s_per_epoch"] / ours["train_s_per_epoch"] if ours["train_s_per_epoch"] else float("nan")
    acc = lambda side: " / ".join(f"{v:.2f}%" for v in side.get("test_top1", {}).values()) or "-"  # noqa: E731
    lines = [f"{result['date']}, {where}, torch {torch.__version__}, recipe {args.recipe}"
             + (f", SMOKE: --max-steps {args.max_steps}" if args.max_steps else "")
             + (f", {result['test_images']} test images" if args.test_images else ""), "",
             "| side | epochs, steps | train s/epoch | wall time | test top-1 exact / JPEG q75 |",
             "| --- | --- | --- | --- | --- |",
             f"| cnnlab | {ours['epochs']}, {ours['steps']}{'' if ours['finished'] else ' (unfinished)'} | "
             f"{ours['train_s_per_epoch'] or float('nan'):.2f} | {ours['trainer_wall_s'] or float('nan'):.1f} s "
             f"(trainer) | {acc(ours)} |",
             f"| reference (DataLoader, {args.workers} workers) | {theirs['epochs']}, {theirs['steps']} | "
             f"{theirs['train_s_per_epoch']:.2f} | - | {acc(theirs)} |",
             "", f"speed-up of cnnlab per training epoch: {ratio:.2f}x; paper test top-1 {PAPER_TEST_ACCURACY[MODEL]}%"]
    (args.out / "tta.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
