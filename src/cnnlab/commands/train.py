"""`cnnlab train`, `cnnlab eval` and `cnnlab predict`: train a zoo model into a run directory,
measure a run on a data set, and classify image files with a run's model."""

from __future__ import annotations

import argparse

from cnnlab.training.spec import CHECKPOINT_MINUTES

ORDER = 30

# flag -> TrainSettings field; every one defaults to None so "not given" is visible (recipe wins)
SETTING_FLAGS = {
    "dataset": dict(help="digits (embedded), mnist, fashion-mnist, cifar10 or imagefolder"),
    "epochs": dict(type=int, help="epochs to train (a recipe may stop earlier at --max-steps)"),
    "max_steps": dict(type=int, help="stop after this many optimizer steps (iterations)"),
    "batch_size": dict(type=int, help="global batch size (split across torchrun processes)"),
    "eval_batch_size": dict(type=int, help="batch size for evaluation (none: 4x the training batch)"),
    "optimizer": dict(choices=("sgd", "adamw"), help="SGD with momentum, or AdamW"),
    "lr": dict(type=float, help="base learning rate (peak of the schedule)"),
    "momentum": dict(type=float, help="SGD momentum"),
    "nesterov": dict(action=argparse.BooleanOptionalAction, help="Nesterov momentum (SGD)"),
    "weight_decay": dict(type=float, help="L2 weight decay (AdamW: decoupled)"),
    "schedule": dict(choices=("constant", "step", "multistep", "cosine", "onecycle", "plateau"),
                     help="learning-rate schedule"),
    "schedule_unit": dict(choices=("epoch", "step"), help="unit of --milestones, --step-size and --warmup"),
    "milestones": dict(type=float, nargs="+", help="multistep: where the lr is multiplied by --gamma"),
    "step_size": dict(type=float, help="step: every how many epochs/steps the lr is multiplied by --gamma"),
    "gamma": dict(type=float, help="lr factor of step, multistep and plateau schedules"),
    "patience": dict(type=int, help="plateau: epochs without improvement before the lr drops"),
    "warmup": dict(type=float, help="linear warm-up length (in --schedule-unit)"),
    "label_smoothing": dict(type=float, help="label smoothing of the training loss"),
    "aux_weight": dict(type=float, help="weight of GoogLeNet's auxiliary losses (paper: 0.3)"),
    "val_split": dict(type=float, help="hold out this many training images (or this fraction) for validation"),
    "train_per_class": dict(type=int, metavar="N", help="few-shot: keep only N training images per class"),
    "augment": dict(nargs="*", metavar="AUG", help="batch augmentation: crop:PAD flip pca:SIGMA"),
    "seed": dict(type=int, help="seed of weights, order and augmentation: a CPU run repeats bit for bit"),
    "precision": dict(choices=("auto", "fp32", "bf16"), help="auto: bf16 autocast on CUDA, fp32 on CPU"),
    "compile": dict(nargs="?", const="default", choices=("default", "reduce-overhead", "max-autotune"),
                    help="torch.compile the model (reduce-overhead adds CUDA graphs)"),
    "sync_bn": dict(action=argparse.BooleanOptionalAction, help="SyncBatchNorm across torchrun processes"),
    "log_interval": dict(type=int, help="steps between progress updates (each one reads the metrics)"),
    "workers": dict(type=int, help="data-loading processes for image folders"),
    "threads": dict(type=int, help="PyTorch threads on CPU (none: PyTorch's own choice)"),
    "early_stop": dict(type=int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation top-1 (needs --val-split)"),
}


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """The training settings as flags; each help says its default: the recipe's, else TrainSettings'."""
    from cnnlab.training.settings import TrainSettings

    defaults = TrainSettings()
    for name, options in SETTING_FLAGS.items():
        default = getattr(defaults, name)
        shown = "none" if default in (None, []) else default
        options = {**options, "help": f"{options['help']} (default: the recipe's, else {shown})"}
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **options)


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="where the data set files are (default: $CNNLAB_DATA, else a home cache)")
    parser.add_argument("--download", action="store_true", help="fetch a missing data set (needs the network)")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Where a new run goes and how it is kept: shared by train and finetune."""
    add_data_flags(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--out", help="run directory to create (default: runs/<date>-<model>-<dataset>)")
    parser.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                        help="also write a checkpoint every STEPS optimizer steps inside an epoch")
    parser.add_argument("--checkpoint-minutes", type=float, metavar="M",
                        help=f"also write a checkpoint after every M minutes of training (default {CHECKPOINT_MINUTES:g}; "
                        "0: only at epoch ends); a resumed run keeps its own unless given")
    parser.add_argument("--tensorboard", action="store_true", default=None,
                        help="also write the metrics as TensorBoard scalars in RUN/tensorboard "
                        "(pip install 'cnnlab[tensorboard]')")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train a zoo model. A recipe (the paper's hyper-parameters) sets the defaults; flags override "
        "it. SIGTERM or Ctrl-C writes a checkpoint at the current step and prints the command that resumes it.",
    )
    train.add_argument("model", nargs="?", help="zoo name (see 'cnnlab list'); optional with --resume")
    train.add_argument("--recipe", help="recipe name (default: the one made for this model and data set)")
    train.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    add_setting_flags(train)
    add_run_flags(train)
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (mid-epoch too)")
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a run or checkpoint on a data set",
        description="Loss, top-1/top-5 accuracy and error, per-class accuracy and the confusion matrix "
        "(saved as eval-<dataset>-<split>.json in the run).",
    )
    evaluate.add_argument("run_or_checkpoint", help="a run directory (or a checkpoint folder inside one)")
    evaluate.add_argument("--dataset", help="data set (default: the one the run trained on)")
    evaluate.add_argument("--split", choices=("test", "val"), default="test", help="which split to evaluate")
    evaluate.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint's weights")
    evaluate.add_argument("--batch-size", type=int, default=1024, help="views per batch (with --tta: images x views)")
    evaluate.add_argument("--tta", choices=("flip", "10crop", "144crop"),
                          help="test-time augmentation: average the softmax over each image and its mirror (flip), "
                          "the four corner and centre crops and their mirrors (10crop, AlexNet's), or GoogLeNet's "
                          "144 crops (image folders); recorded in the result")
    add_data_flags(evaluate)
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    evaluate.set_defaults(run=run_eval)

    predict = subparsers.add_parser(
        "predict",
        help="top-5 classes of image files with a run's model",
        description="Classify image files, resized and normalised the way the run was trained.",
    )
    predict.add_argument("run_dir", metavar="RUN", help="a run directory")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    predict.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint's weights")
    predict.add_argument("--count", type=int, default=5, help="classes listed per image, most probable first")
    predict.add_argument("--top", dest="count", type=int, help=argparse.SUPPRESS)  # the old spelling of --count
    predict.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    predict.add_argument("--invert", action="store_true",
                         help="invert each image (255 - pixel) first: dark-on-light drawings for a light-on-dark model")
    predict.add_argument("--show-input", action="store_true",
                         help="save each image beside the model's input as RUN/figures/IMAGE-input.png")
    predict.add_argument("--force", action="store_true", help="with --show-input: replace that image's figure")
    predict.set_defaults(run=run_predict)


def run_options(args) -> dict:
    """The TrainSpec fields that say where and how a run is kept (not what it computes); the
    checkpoint cadence only when given, so a resumed run keeps its own."""
    options = {"device": args.device, "quiet": args.quiet, "download": args.download}
    for name in ("checkpoint_every", "checkpoint_minutes", "tensorboard"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def run_train(args) -> int:
    from cnnlab.errors import CnnlabError
    from cnnlab.training.settings import list_recipes, load_recipe, resolve_settings
    from cnnlab.training.spec import TrainSpec

    if args.list_recipes:
        for name in list_recipes():
            print(f"{name:24} {load_recipe(name)['description']}")
        return 0
    given = {name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name) is not None}
    if args.resume is not None:
        from cnnlab.training.resume import RunFinished, resume_spec

        try:
            spec = resume_spec(args.resume, given, model=args.model, recipe=args.recipe, out=args.out,
                               data_dir=args.data_dir, **run_options(args))
        except RunFinished:
            if not _composed(args.resume):  # killed after its last checkpoint, while writing summary or report
                return compose_finished(args.resume, args.quiet)
            raise
    else:
        if args.model is None:
            raise CnnlabError("name the model to train, e.g. 'cnnlab train lenet5' (see 'cnnlab list')")
        settings, recipe = resolve_settings(args.model, args.recipe, given)
        spec = TrainSpec(args.model, settings, recipe=recipe, out=args.out, data_dir=args.data_dir,
                         **run_options(args))

    from cnnlab.training.trainer import train

    return finish_run(train(spec), args.quiet)


def finish_run(result, quiet: bool) -> int:
    """After training: a run stopped by a signal says how to resume it (exit 143 or 130); a
    finished one gets the analyzer's summary and its report. Only the process that wrote the run
    (rank 0) does either."""
    from cnnlab.training.control import SIGNALS

    run = result.run_dir
    if result.stopped:
        name, code = SIGNALS[result.stopped]
        if run is not None:
            import sys

            from cnnlab.training.distributed import launched

            where = result.checkpoint or "none written yet"
            launcher = "the same torchrun launch of " if launched() else ""
            print(f"cnnlab: stopped by {name}: checkpoint {where}; resume with: {launcher}cnnlab train --resume {run}",
                  file=sys.stderr, flush=True)
        return code
    if run is not None:
        compose(run, result.model, quiet)
    return 0


def compose(run, model, quiet: bool) -> None:
    """A finished run's summary and report, from its files (train → report through the run
    directory only)."""
    from cnnlab.viz import write_report

    write_run_summary(run, model)
    report = write_report(run, force=True)  # the run's own report: a resumed run brings it up to date
    if not quiet:
        print(f"run saved in {run}")
        print(f"report: {report}")


def _composed(run) -> bool:
    from pathlib import Path

    from cnnlab.run import REPORT, SUMMARY_JSON, SUMMARY_MD

    return all((Path(run) / name).is_file() for name in (SUMMARY_MD, SUMMARY_JSON, REPORT))


def compose_finished(run, quiet: bool) -> int:
    """`--resume` of a run that finished training but was killed before its summary and report
    were written: write them now, under the run's lock, and say so."""
    import sys
    from pathlib import Path

    from cnnlab.run import RunLock, load_model
    from cnnlab.run.layout import remove_stale_temporaries

    run = Path(run)
    with RunLock(run):
        remove_stale_temporaries(run)
        print(f"cnnlab: {run} had finished training; writing its missing summary and report", file=sys.stderr)
        compose(run, load_model(run, "last")[0], quiet)
    return 0


def write_run_summary(run, model) -> None:
    """The analyzer's table of the run's model at its input: summary.md to read, summary.json for
    the report (which never parses Markdown)."""
    from cnnlab.analysis import render, summary
    from cnnlab.run import SUMMARY_JSON, SUMMARY_MD, read_config, write_atomic

    table = summary(model, tuple(read_config(run)["input_shape"]))
    write_atomic(run / SUMMARY_MD, render(table, "md"))
    write_atomic(run / SUMMARY_JSON, render(table, "json"))


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
    from pathlib import Path

    from cnnlab.errors import warn
    from cnnlab.run import FIGURES, read_config
    from cnnlab.training.evaluation import predict_images
    from cnnlab.viz.figure import replace_existing
    from cnnlab.viz.inputs import input_warning, plot_input, steps_of

    replace_existing.set(args.force)
    data = read_config(args.run_dir)["dataset"]
    for path, ranking, x in predict_images(args.run_dir, args.images, which=args.checkpoint, top=args.count,
                                           device=args.device, invert=args.invert):
        if warning := input_warning(path, x, data["mean"], data["std"]):
            warn(warning)
        print(path)
        for rank, (name, probability) in enumerate(ranking, 1):
            print(f"  {rank}. {name:<20} {100 * probability:6.2f}%")
        if args.show_input:
            figure = plot_input(path, x, data["mean"], data["std"], Path(args.run_dir) / FIGURES, steps_of(data),
                                args.invert)
            print(f"  input as the model sees it: {figure}")
    return 0
