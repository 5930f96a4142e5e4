"""`cnnlab scratch train` and `cnnlab scratch gradcheck`: train a network with the NumPy engine into
an ordinary run directory, and check every layer's backward pass."""

from __future__ import annotations

import argparse

ORDER = 90
DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
DEFAULT_EPOCHS = {"digits": 20, "mnist": 5, "fashion-mnist": 10, "cifar10": 10}
DEFAULT_SHIFT = {"digits": 2, "mnist": 0, "fashion-mnist": 0, "cifar10": 4}  # 1,437 digits need augmentation to pass 97%
# defaults per model: LeNet-5's from cnnlab's digits/MNIST trials (on MNIST lr 0.05 sent one seed
# in three to chance; 0.02 gave 99.2-99.4% for all three); the CIFAR nets' from He et al. 2016, §4.2
LENET_DEFAULTS = {"batch_size": 32, "lr": 0.02, "weight_decay": 5e-4}
LENET_DIGITS_LR = 0.05  # 1,437 images: the larger rate is stable there, and needed in 20 epochs
CIFAR_DEFAULTS = {"batch_size": 128, "lr": 0.1, "weight_decay": 1e-4}
ADAM_LR = 1e-3


def register(subparsers) -> None:
    scratch = subparsers.add_parser(
        "scratch", help="the NumPy from-scratch engine", description="Train and check networks with cnnlab's NumPy-only engine (no torch in the loop)."
    )
    commands = scratch.add_subparsers(dest="scratch_command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train a network with the NumPy engine", description=(
        "Train with hand-written forward and backward passes in NumPy. Writes the same run directory as "
        "'cnnlab train' (config.json, metrics.jsonl, checkpoints/), so eval, viz and report read it."))
    train.add_argument("model", help="network to build: lenet5, resnet20/32/44/56/110, plain20/32/44/56/110 or nin_cifar")
    train.add_argument("--dataset", choices=DATASETS, default="digits", help="data set (default: digits)")
    train.add_argument("--data-dir", help="folder holding the data sets (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    train.add_argument("--download", action="store_true", help="download the data set first if it is missing")
    train.add_argument("--train-size", type=int, help="train on the first N training images only (default: all)")
    train.add_argument("--test-size", type=int, help="test on the first N test images only (default: all)")
    train.add_argument("--epochs", type=int, help="passes over the training set (default: digits 20, mnist 5, "
                       "fashion-mnist 10, cifar10 10)")
    train.add_argument("--batch-size", type=int, help="images per step (default: lenet5 32, the CIFAR nets 128)")
    train.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="SGD with momentum, or Adam (default: sgd)")
    train.add_argument("--lr", type=float, help=f"initial learning rate (default: lenet5 0.05 on digits and 0.02 elsewhere, the CIFAR nets 0.1, adam {ADAM_LR})")
    train.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                       help="learning rate per epoch: cosine decay towards 0, or constant (default: cosine)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, help="L2 weight decay (default: lenet5 5e-4, the CIFAR nets 1e-4)")
    train.add_argument("--shift", type=int, help="augmentation: move each training image by up to this many "
                       "pixels at random, every epoch (default: digits 2, cifar10 4 as the paper's padded crops, else 0)")
    train.add_argument("--flip", action=argparse.BooleanOptionalAction, help="augmentation: mirror half the training images "
                       "each epoch (default: on for cifar10, off otherwise)")
    train.add_argument("--conv", choices=["im2col", "naive"], default="im2col",
                       help="convolution: im2col + matrix multiply (fast) or the pixel-by-pixel loop (slow, for reading)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling: a run repeats exactly (default: 0)")
    train.add_argument("--out", help="run folder to create (default: runs/<date>-<model>-<dataset>)")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    train.set_defaults(run=run_train)

    check = commands.add_parser("gradcheck", help="check every layer's backward pass", description=(
        "Run one random batch through a network in float64 and print, layer by layer, the largest relative "
        "difference between the engine's gradients and central finite differences, and between the engine "
        "and PyTorch autograd on the same weights and batch. Exit status 1 if any layer disagrees."))
    check.add_argument("model", help="a network (lenet5, resnet20, plain20, nin_cifar, ...) with fresh weights, "
                       "or a run folder to check with its trained weights")
    check.add_argument("--batch-size", type=int, default=2, help="images in the batch (default: 2)")
    check.add_argument("--size", type=int, default=32, help="image height and width (default: 32)")
    check.add_argument("--samples", type=int, default=6, help="entries per array compared with finite differences (default: 6)")
    check.add_argument("--eval", action="store_true", help="evaluation mode: batch norm uses its running statistics, no dropout")
    check.add_argument("--seed", type=int, default=0, help="seed for the weights, the batch and the sampled entries (default: 0)")
    check.set_defaults(run=run_gradcheck)


def run_train(args) -> int:
    import platform
    import time

    import numpy as np

    from cnnlab import __version__, scratch
    from cnnlab import run as rundir
    from cnnlab.data import dataset_info, load_arrays
    from cnnlab.errors import CnnlabError
    from cnnlab.scratch.data import fit_description, prepare, random_flip, random_shift
    from cnnlab.scratch.models import INPUT_SIZE, check_input, require_model
    from cnnlab.scratch.train import cosine_lr, evaluate, train_epoch
    from cnnlab.training.progress import EpochBar, epoch_line, print_line

    require_model(args.model)  # an unknown model fails here, before any data is read
    defaults = LENET_DEFAULTS if args.model == "lenet5" else CIFAR_DEFAULTS
    if args.model == "lenet5" and args.dataset == "digits":
        defaults = {**defaults, "lr": LENET_DIGITS_LR}

    def given(value, default):
        return default if value is None else value

    epochs = given(args.epochs, DEFAULT_EPOCHS[args.dataset])
    batch_size = given(args.batch_size, defaults["batch_size"])
    lr = given(args.lr, ADAM_LR if args.optimizer == "adam" else defaults["lr"])
    weight_decay = given(args.weight_decay, defaults["weight_decay"])
    shift = given(args.shift, DEFAULT_SHIFT[args.dataset])
    flip = given(args.flip, args.dataset == "cifar10")
    fill = 0.0 if args.dataset == "cifar10" else "edge"  # zero (the mean colour once normalised), as 'cnnlab train'
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise CnnlabError("--epochs, --batch-size and --lr must be positive")
    if shift < 0:
        raise CnnlabError(f"--shift must be 0 or more pixels, not {shift}")
    if any(n is not None and n < 1 for n in (args.train_size, args.test_size)):
        raise CnnlabError("--train-size and --test-size must be at least 1")
    info = dataset_info(args.dataset)
    (x_train, y_train, classes), (x_test, y_test, _) = (load_arrays(args.dataset, s, args.data_dir, args.download) for s in ("train", "test"))
    x_train, y_train, x_test, y_test = x_train[: args.train_size], y_train[: args.train_size], x_test[: args.test_size], y_test[: args.test_size]
    native_shape = x_train.shape[1:]
    x_train, x_test = (prepare(x, INPUT_SIZE, info.mean, info.std) for x in (x_train, x_test))
    input_shape = [int(x_train.shape[1]), INPUT_SIZE, INPUT_SIZE]

    model_kwargs = {"num_classes": len(classes), "in_channels": input_shape[0]}
    model = scratch.build(args.model, **model_kwargs, seed=args.seed, conv_method=args.conv)
    check_input(model, args.model, input_shape)
    if args.optimizer == "adam":
        optimizer = scratch.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        optimizer = scratch.SGD(model.parameters(), lr=lr, momentum=args.momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(args.seed + 1)  # shuffling and augmentation, independent of the weights' stream

    run = rundir.new_run_dir(args.out, args.model, args.dataset)
    rundir.write_config(run, {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "input_shape": input_shape,
        "engine": "scratch",
        "dataset": {"dataset": args.dataset, "source": info.source, "classes": classes, "mean": list(info.mean),
                    "std": list(info.std), "train_size": len(x_train), "val_size": 0, "test_size": len(x_test),
                    "native_shape": list(native_shape), "input_shape": input_shape,
                    "adapt": [fit_description(native_shape[1:], INPUT_SIZE)], "normalise": "(x / 255 - mean) / std per channel"},
        "train": {"epochs": epochs, "batch_size": batch_size, "optimizer": args.optimizer, "lr": lr,
                  **({"momentum": args.momentum} if args.optimizer == "sgd" else {}), "weight_decay": weight_decay,
                  "schedule": args.schedule, "val_split": 0, "augment": {"shift": shift, "fill": fill, "flip": flip},
                  "conv": args.conv, "seed": args.seed},
        "seed": args.seed,
        "versions": {"cnnlab": __version__, "numpy": np.__version__, "python": platform.python_version()},
    })
    print_line(f"run folder: {run}", args.quiet)

    steps = -(-len(x_train) // batch_size)
    best_loss, begin = float("inf"), time.perf_counter()
    for epoch in range(1, epochs + 1):
        optimizer.lr = cosine_lr(lr, epoch, epochs) if args.schedule == "cosine" else lr
        bar = EpochBar(epoch, epochs, steps, quiet=args.quiet, desc=f"scratch epoch {epoch}/{epochs}")

        def on_step(seen, loss_sum, correct, bar=bar):
            bar.advance()
            bar.show(loss=loss_sum / seen, top1=correct / seen)

        x_epoch = random_shift(x_train, shift, rng, fill) if shift else x_train
        x_epoch = random_flip(x_epoch, rng) if flip else x_epoch
        train = train_epoch(model, optimizer, x_epoch, y_train, batch_size, rng, on_step)
        bar.close()
        test = evaluate(model, x_test, y_test, batch_size)
        elapsed = time.perf_counter() - begin
        for split, metrics in (("train", train), ("test", test)):
            record = {"epoch": epoch, "step": epoch * steps, "split": split, "loss": metrics["loss"], "top1": metrics["top1"],
                      "lr": optimizer.lr, "time": elapsed}
            if split == "train":
                record.update(images_per_s=train["images_per_s"], epoch_seconds=train["seconds"])
            rundir.append_metrics(run, [record])
        print_line(epoch_line(epoch=epoch, epochs=epochs, train=train, test=test, lr=optimizer.lr,
                              seconds=train["seconds"], images_per_s=train["images_per_s"]), args.quiet)
        _save(run, model, optimizer, epoch, "last")
        if train["loss"] < best_loss:  # as 'cnnlab train' without a validation split: the test set chooses nothing
            best_loss = train["loss"]
            _save(run, model, optimizer, epoch, "best")
    print_line(f"final test accuracy {100 * test['top1']:.2f}%  ({run})", args.quiet)
    return 0


def _save(run, model, optimizer, epoch: int, name: str) -> None:
    """Write the checkpoint with cnnlab's shared writer (the one 'cnnlab train' uses), so every tool
    reads a scratch run like any other. Only this step touches torch; the engine never does."""
    import numpy as np
    import torch

    from cnnlab.run import CHECKPOINTS
    from cnnlab.run.checkpoint import SCRATCH, save_checkpoint

    def tensors(arrays):  # np.array(order="C"), not ascontiguousarray: that turns a 0-d counter into shape (1,)
        return {key: torch.from_numpy(np.array(value, order="C")) for key, value in arrays.items()}

    optimizer_state = {key: tensors(value) if isinstance(value, dict) else value for key, value in optimizer.state().items()}
    state = {"epoch": epoch, "engine": SCRATCH, **optimizer_state}
    save_checkpoint(run / CHECKPOINTS, name, tensors(model.state_dict()), state)


def run_gradcheck(args) -> int:
    from pathlib import Path

    import numpy as np

    from cnnlab import run as rundir
    from cnnlab import scratch
    from cnnlab.errors import CnnlabError
    from cnnlab.scratch.gradcheck import H, NUMERIC_TOLERANCE, TORCH_TOLERANCE, check_model
    from cnnlab.scratch.layers import Conv2d
    from cnnlab.scratch.models import check_input

    if min(args.batch_size, args.size, args.samples) < 1:
        raise CnnlabError("--batch-size, --size and --samples must be at least 1")
    if Path(args.model).is_dir():
        config = rundir.read_config(args.model)
        name, kwargs, model = config["model"], config.get("model_kwargs", {}), scratch.load_run(args.model)
        weights = f"the weights of {args.model}"
    else:
        name, kwargs, model = args.model, {}, scratch.build(args.model, seed=args.seed)
        weights = f"fresh weights (seed {args.seed})"
    model.train(not args.eval)
    channels = next(layer for _, layer in model.leaves() if isinstance(layer, Conv2d)).in_channels
    shape = (channels, args.size, args.size)
    num_classes = check_input(model, name, shape).shape[1]
    rng = np.random.default_rng(args.seed)
    x, y = rng.standard_normal((args.batch_size, *shape)), rng.integers(0, num_classes, args.batch_size)
    try:
        rows = check_model(model, name, kwargs, x, y, args.samples, args.seed)
    except CnnlabError as error:  # e.g. batch norm with one value per channel
        raise CnnlabError(f"{name} cannot take a batch of {args.batch_size} × {'×'.join(map(str, shape))}: {error}") from None

    print(f"gradcheck {name}: {weights}, float64, {args.batch_size} random {'×'.join(map(str, shape))} images, "
          f"{'evaluation' if args.eval else 'training'} mode")
    print(f"per layer: max |engine − reference| / max |reference| over each input and parameter gradient; "
          f"finite differences on up to {args.samples} sampled entries per array (h = {H:g}), "
          "skipping entries on a kink (ReLU at 0, a max-pool tie)\n")
    width = max(len(row.layer) for row in rows)
    print(f"{'layer':{width}}  {'type':16} {'vs finite diff.':>15} {'vs torch autograd':>18} {'compared':>9} {'kinks':>6}")
    for row in rows:
        flag = "" if row.ok else "   <-- disagrees"
        print(f"{row.layer:{width}}  {row.kind:16} {row.vs_numeric:15.1e} {row.vs_torch:18.1e} {row.compared:9d} {row.kinks:6d}{flag}")
    worst = max(rows, key=lambda row: row.vs_torch)
    if all(row.ok for row in rows):
        print(f"\nok: every layer agrees with torch autograd to {TORCH_TOLERANCE:g} (largest {worst.vs_torch:.1e}, "
              f"{worst.layer}) and with finite differences to {NUMERIC_TOLERANCE:g}")
        return 0
    bad = [row.layer for row in rows if not row.ok]
    print(f"\nFAILED: {', '.join(bad)} disagree (tolerances: torch {TORCH_TOLERANCE:g}, finite differences {NUMERIC_TOLERANCE:g})")
    return 1
