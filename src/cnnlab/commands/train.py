"""`cnnlab train`, `cnnlab eval` and `cnnlab predict`: train a zoo model into a run directory,
measure a run on a data set, and classify image files with a run's model."""

from __future__ import annotations

import argparse

ORDER = 30

# flag -> TrainSettings field; every one defaults to None so "not given" is visible (recipe wins)
SETTING_FLAGS = {
    "dataset": dict(help="digits (default, embedded), mnist, fashion-mnist, cifar10 or imagefolder"),
    "epochs": dict(type=int, help="epochs to train (a recipe may stop earlier at --max-steps)"),
    "max_steps": dict(type=int, help="stop after this many optimizer steps (iterations)"),
    "batch_size": dict(type=int, help="global batch size (split across torchrun processes)"),
    "eval_batch_size": dict(type=int, help="batch size for evaluation (default 4x the training batch)"),
    "optimizer": dict(choices=("sgd", "adamw")),
    "lr": dict(type=float, help="base learning rate"),
    "momentum": dict(type=float),
    "nesterov": dict(action=argparse.BooleanOptionalAction, help="Nesterov momentum (SGD)"),
    "weight_decay": dict(type=float),
    "schedule": dict(choices=("constant", "step", "multistep", "cosine", "onecycle", "plateau")),
    "schedule_unit": dict(choices=("epoch", "step"), help="unit of --milestones, --step-size and --warmup"),
    "milestones": dict(type=float, nargs="+", help="multistep: where the lr is multiplied by --gamma"),
    "step_size": dict(type=float, help="step: every how many epochs/steps the lr is multiplied by --gamma"),
    "gamma": dict(type=float, help="lr factor of step, multistep and plateau schedules"),
    "patience": dict(type=int, help="plateau: epochs without improvement before the lr drops"),
    "warmup": dict(type=float, help="linear warm-up length (in --schedule-unit)"),
    "label_smoothing": dict(type=float),
    "aux_weight": dict(type=float, help="weight of GoogLeNet's auxiliary losses (paper: 0.3)"),
    "val_split": dict(type=float, help="hold out this many training images (or this fraction) for validation"),
    "augment": dict(nargs="*", metavar="AUG", help="batch augmentation: crop:PAD flip pca:SIGMA"),
    "seed": dict(type=int),
    "precision": dict(choices=("auto", "fp32", "bf16"), help="auto: bf16 autocast on CUDA, fp32 on CPU"),
    "compile": dict(nargs="?", const="default", choices=("default", "reduce-overhead", "max-autotune"),
                    help="torch.compile the model (reduce-overhead adds CUDA graphs)"),
    "sync_bn": dict(action=argparse.BooleanOptionalAction, help="SyncBatchNorm across torchrun processes"),
    "log_interval": dict(type=int, help="steps between progress updates (each one reads the metrics)"),
    "workers": dict(type=int, help="data-loading processes for image folders"),
    "threads": dict(type=int,
                    help="PyTorch threads on CPU (default: the recipe's, else PyTorch's; 1 helps on a busy machine)"),
}


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where the data set files are (default: $CNNLAB_DATA, else a home cache)")
    parser.add_argument("--download", action="store_true", help="fetch a missing data set (needs the network)")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train a zoo model. A recipe (the paper's hyper-parameters) sets the defaults; flags override it.",
    )
    train.add_argument("model", nargs="?", help="zoo name (see 'cnnlab list'); optional with --resume")
    train.add_argument("--recipe", help="recipe name (default: the one made for this model and data set)")
    train.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    for name, options in SETTING_FLAGS.items():
        train.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **options)
    add_data_flags(train)
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    train.add_argument("--out", help="run directory to create (default: runs/<date>-<model>-<dataset>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a run or checkpoint on a data set",
        description="Loss, top-1/top-5 accuracy and error, per-class accuracy and the confusion matrix "
        "(saved as eval-<dataset>-<split>.json in the run).",
    )
    evaluate.add_argument("run_or_checkpoint", help="a run directory (or a checkpoint folder inside one)")
    evaluate.add_argument("--dataset", help="data set (default: the one the run trained on)")
    evaluate.add_argument("--split", choices=("test", "val"), default="test")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best")
    evaluate.add_argument("--batch-size", type=int, default=1024, help="views per batch (with --tta: images x views)")
    evaluate.add_argument("--tta", choices=("flip", "10crop", "144crop"),
                          help="test-time augmentation: average the softmax over each image and its mirror (flip), "
                          "the four corner and centre crops and their mirrors (10crop, AlexNet's), or GoogLeNet's "
                          "144 crops (image folders); recorded in the result")
    add_data_flags(evaluate)
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(run=run_eval)

    predict = subparsers.add_parser(
        "predict",
        help="top-5 classes of image files with a run's model",
        description="Classify image files, resized and normalised the way the run was trained.",
    )
    predict.add_argument("run_dir", metavar="RUN", help="a run directory")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--checkpoint", choices=("best", "last"), default="best")
    predict.add_argument("--top", type=int, default=5)
    predict.add_argument("--device", default="auto")
    predict.set_defaults(run=run_predict)


def run_train(args) -> int:
    from cnnlab.errors import CnnlabError
    from cnnlab.training.settings import list_recipes, load_recipe, resolve_settings

    if args.list_recipes:
        for name in list_recipes():
            print(f"{name:24} {load_recipe(name)['description']}")
        return 0
    overrides = {name: getattr(args, name) for name in SETTING_FLAGS}
    explicit = {name for name, value in overrides.items() if value is not None}
    if args.resume is not None:
        from cnnlab.rundir import read_config

        config = read_config(args.resume)
        model = args.model or config["model"]
        settings = None
        if explicit:
            from cnnlab.training.settings import TrainSettings

            settings = TrainSettings.from_dict({**config["train"], **{k: overrides[k] for k in explicit}})
        if args.recipe is not None:
            raise CnnlabError("a resumed run keeps its recipe: drop --recipe")
        recipe = None
    else:
        if args.model is None:
            raise CnnlabError("name the model to train, e.g. 'cnnlab train lenet5' (see 'cnnlab list')")
        model = args.model
        settings, recipe = resolve_settings(model, args.recipe, overrides)

    from cnnlab.training.trainer import train

    result = train(
        model,
        settings,
        recipe=recipe,
        out=args.out,
        device=args.device,
        quiet=args.quiet,
        data_dir=args.data_dir,
        download=args.download,
        resume=args.resume,
        explicit=explicit,
    )
    print_run(result, args.quiet)
    return 0


def print_run(result, quiet: bool) -> None:
    """Where a finished run lives and the report to open (only the process that wrote them prints)."""
    if result.run_dir is not None and not quiet:
        print(f"run saved in {result.run_dir}")
        print(f"report: {result.run_dir / 'report.html'}")


def run_eval(args) -> int:
    from pathlib import Path

    from cnnlab.training.evaluation import evaluate_run

    report, path = evaluate_run(
        Path(args.run_or_checkpoint),
        dataset=args.dataset,
        split=args.split,
        which=args.checkpoint,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        download=args.download,
        device=args.device,
        tta=args.tta,
    )
    views = f", {report['views']} views each ({report['tta']})" if report["tta"] else ""
    print(f"{report['model']} on {report['dataset']} {report['split']} ({report['images']:,} images{views}, "
          f"checkpoint {report['checkpoint']})")
    print(f"  loss {report['loss']:.4f}")
    print(f"  top-1 accuracy {100 * report['top1']:.2f}%  (error {100 * report['top1_error']:.2f}%)")
    print(f"  top-5 accuracy {100 * report['top5']:.2f}%  (error {100 * report['top5_error']:.2f}%)")
    print("  per-class accuracy:")
    for name, acc in zip(report["classes"], report["per_class_accuracy"]):
        print(f"    {name:>14}  " + ("no images" if acc is None else f"{100 * acc:6.2f}%"))
    print(f"saved {path}")
    return 0


def run_predict(args) -> int:
    from cnnlab.training.evaluation import predict_images

    for path, ranking in predict_images(args.run_dir, args.images, which=args.checkpoint, top=args.top,
                                        device=args.device):
        print(path)
        for rank, (name, probability) in enumerate(ranking, 1):
            print(f"  {rank}. {name:<20} {100 * probability:6.2f}%")
    return 0
