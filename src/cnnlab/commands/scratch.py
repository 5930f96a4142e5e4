"""`cnnlab scratch train`: train a network with the NumPy engine, into an ordinary run directory."""

from __future__ import annotations

ORDER = 90
DATASETS = ("digits", "mnist", "fashion-mnist")
DEFAULT_EPOCHS = {"digits": 20, "mnist": 5, "fashion-mnist": 10}
DEFAULT_SHIFT = {"digits": 2, "mnist": 0, "fashion-mnist": 0}  # 1,437 digits need augmentation to pass 97%


def register(subparsers) -> None:
    scratch = subparsers.add_parser(
        "scratch", help="the NumPy from-scratch engine", description="Train with cnnlab's NumPy-only engine (no torch in the loop)."
    )
    commands = scratch.add_subparsers(dest="scratch_command", metavar="COMMAND", required=True)
    train = commands.add_parser("train", help="train a network with the NumPy engine", description=(
        "Train with hand-written forward and backward passes in NumPy. Writes the same run directory as "
        "'cnnlab train' (config.json, metrics.jsonl, checkpoints/), so eval, viz and report read it."))
    train.add_argument("model", choices=["lenet5"], help="network to build (the zoo's lenet5)")
    train.add_argument("--dataset", choices=DATASETS, default="digits", help="data set (default: digits)")
    train.add_argument("--data-dir", help="folder holding the data sets (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    train.add_argument("--download", action="store_true", help="download the data set first if it is missing")
    train.add_argument("--epochs", type=int, help="passes over the training set (default: digits 20, mnist 5, fashion-mnist 10)")
    train.add_argument("--batch-size", type=int, default=32, help="images per step (default: 32)")
    train.add_argument("--lr", type=float, default=0.05, help="initial learning rate (default: 0.05)")
    train.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                       help="learning rate per epoch: cosine decay towards 0, or constant (default: cosine)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay (default: 5e-4)")
    train.add_argument("--shift", type=int, help="augmentation: move each training image by up to this many "
                       "pixels at random, every epoch (default: digits 2, mnist and fashion-mnist 0)")
    train.add_argument("--conv", choices=["im2col", "naive"], default="im2col",
                       help="convolution: im2col + matrix multiply (fast) or the pixel-by-pixel loop (slow, for reading)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling: a run repeats exactly (default: 0)")
    train.add_argument("--out", help="run folder to create (default: runs/<date>-<model>-<dataset>)")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    train.set_defaults(run=run_train)


def run_train(args) -> int:
    import platform
    import time

    import numpy as np

    from cnnlab import __version__, scratch
    from cnnlab import run as rundir
    from cnnlab.data import dataset_info, load_arrays
    from cnnlab.errors import CnnlabError
    from cnnlab.scratch.data import fit_description, prepare, random_shift
    from cnnlab.scratch.train import cosine_lr, evaluate, train_epoch
    from cnnlab.training.progress import EpochBar, epoch_line, print_line

    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[args.dataset]
    shift = args.shift if args.shift is not None else DEFAULT_SHIFT[args.dataset]
    if epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise CnnlabError("--epochs, --batch-size and --lr must be positive")
    if shift < 0:
        raise CnnlabError(f"--shift must be 0 or more pixels, not {shift}")
    info = dataset_info(args.dataset)
    (x_train, y_train, classes), (x_test, y_test, _) = (load_arrays(args.dataset, s, args.data_dir, args.download) for s in ("train", "test"))
    native_shape = x_train.shape[1:]
    x_train, x_test = (prepare(x, 32, info.mean, info.std) for x in (x_train, x_test))

    model = scratch.lenet5(num_classes=len(classes), in_channels=x_train.shape[1], seed=args.seed, conv_method=args.conv)
    optimizer = scratch.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed + 1)  # shuffling, independent of the weights' stream

    run = rundir.new_run_dir(args.out, args.model, args.dataset)
    rundir.write_config(run, {
        "model": args.model,
        "model_kwargs": {"num_classes": len(classes), "in_channels": int(x_train.shape[1])},
        "input_shape": [int(x_train.shape[1]), 32, 32],
        "engine": "scratch",
        "dataset": {"dataset": args.dataset, "source": info.source, "classes": classes, "mean": list(info.mean),
                    "std": list(info.std), "train_size": len(x_train), "val_size": 0, "test_size": len(x_test),
                    "native_shape": list(native_shape), "input_shape": [int(x_train.shape[1]), 32, 32],
                    "adapt": [fit_description(native_shape[1:], 32)], "normalise": "(x / 255 - mean) / std per channel"},
        "train": {"epochs": epochs, "batch_size": args.batch_size, "optimizer": "sgd", "lr": args.lr,
                  "momentum": args.momentum, "weight_decay": args.weight_decay, "schedule": args.schedule,
                  "val_split": 0, "augment": {"shift": shift}, "conv": args.conv, "seed": args.seed},
        "seed": args.seed,
        "versions": {"cnnlab": __version__, "numpy": np.__version__, "python": platform.python_version()},
    })
    print_line(f"run folder: {run}", args.quiet)

    steps = -(-len(x_train) // args.batch_size)
    best_loss, begin = float("inf"), time.perf_counter()
    for epoch in range(1, epochs + 1):
        optimizer.lr = cosine_lr(args.lr, epoch, epochs) if args.schedule == "cosine" else args.lr
        bar = EpochBar(epoch, epochs, steps, quiet=args.quiet, desc=f"scratch epoch {epoch}/{epochs}")

        def on_step(seen, loss_sum, correct, bar=bar):
            bar.advance()
            bar.show(loss=loss_sum / seen, top1=correct / seen)

        x_epoch = random_shift(x_train, shift, rng) if shift else x_train
        train = train_epoch(model, optimizer, x_epoch, y_train, args.batch_size, rng, on_step)
        bar.close()
        test = evaluate(model, x_test, y_test)
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

    def tensors(arrays):
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}

    state = {"epoch": epoch, "engine": SCRATCH, "momentum_buffers": tensors(optimizer.velocity)}
    save_checkpoint(run / CHECKPOINTS, name, tensors(model.state_dict()), state)
