"""`cnnlab viz ...` (figures of a run or a zoo model) and `cnnlab report RUN` (report.html).

Every viz command writes its figures into the run's figures/ (or ./figures/<model> for a zoo
model, or --out) and prints their paths, one per line. Figures of an image are named after it
(IMAGE-gradcam-LAYER.png, ...), so a second image never replaces the first one's.

Names are shared across commands: --input for a shape, --count for "how many", --layer (repeatable
where several make sense). The older spellings (--input-shape, --max, --layers A,B) still work,
hidden from --help, for one release.
"""

from __future__ import annotations

import argparse

ORDER = 40

SUBJECT_HELP = "a run folder (its best checkpoint) or a zoo model name (random weights)"
HIDDEN = argparse.SUPPRESS


def register(subparsers) -> None:
    viz = subparsers.add_parser("viz", help="figures: filters, feature maps, CAM, deconv, curves, confusion, architecture",
                                description="Figures of a run or of a zoo model with random weights; prints their paths.")
    sub = viz.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    def add(name, help_text, run, image=False, subject=True):
        parser = sub.add_parser(name, help=help_text, description=help_text)
        if subject:
            parser.add_argument("subject", metavar="RUN", help=SUBJECT_HELP)
        if image:
            parser.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, ...)")
            parser.add_argument("--invert", action="store_true",
                                help="invert the image (255 - pixel) first, e.g. a digit drawn dark on light for a "
                                     "model trained on light on dark (default: off)")
            parser.add_argument("--show-input", action="store_true",
                                help="also save the image beside the model's input, IMAGE-input.png (default: off)")
        parser.add_argument("--out", help="folder for the figures (default: RUN/figures, or ./figures/MODEL)")
        parser.add_argument("--force", action="store_true", help="replace figures that already exist (default: refuse)")
        if subject:
            parser.add_argument("--input", metavar="CxHxW",
                                help="a model, not a run: the input shape, e.g. 3x64x64 (default: the model's own)")
            parser.add_argument("--input-shape", dest="input", help=HIDDEN)
        parser.set_defaults(run=run)
        return parser

    def sanity(parser):
        parser.add_argument("--no-sanity-check", dest="sanity", action="store_false",
                            help="skip the model-randomisation check (Adebayo et al. 2018) drawn under the maps "
                                 "(default: drawn)")

    p = add("filters", "the kernels of a convolution layer as a grid", _filters)
    p.add_argument("--layer", help="layer name, e.g. features.c1 or c1 (default: the first convolution)")
    p.add_argument("--count", type=int, help="filters shown (default: 96 colour / 64 grey first layer, 16 deeper)")
    p.add_argument("--max", dest="count", type=int, help=HIDDEN)

    p = add("activations", "response maps of each chosen layer for one image, one figure per layer", _activations, True)
    p.add_argument("--layer", action="append", metavar="LAYER",
                   help="a layer to show; repeat for several (default: the convolutions, at most 8)")
    p.add_argument("--layers", help=HIDDEN)
    p.add_argument("--count", type=int, default=100, help="channels shown per layer (default 100)")
    p.add_argument("--max", dest="count", type=int, help=HIDDEN)

    p = add("overlay", "chosen channels' responses laid over the image", _overlay, True)
    p.add_argument("--layer", required=True, help="layer name (required)")
    p.add_argument("--channels", help="comma-separated channel indices (default: the --count strongest)")
    p.add_argument("--count", type=int, default=6, help="strongest channels shown when --channels is not given "
                                                         "(default 6)")

    p = add("cam", "class activation maps over the image, with the top-5 predictions and their sanity check", _cam, True)
    p.add_argument("--method", default="gradcam", choices=("gradcam", "gradcam++", "scorecam"),
                   help="default gradcam")
    p.add_argument("--target", help="class name or index (default: each of the top-5 classes)")
    p.add_argument("--layer", help="target layer (default: the last feature map of at least 7x7, else the last "
                                   "larger than 1x1; printed)")
    sanity(p)

    p = add("deconv", "Zeiler & Fergus deconvnet projections of a layer's strongest activations", _deconv, True)
    p.add_argument("--layer", required=True, help="layer name, e.g. features.conv5 (required)")
    p.add_argument("--count", type=int, default=9, help="channels projected, the strongest (default 9)")
    sanity(p)

    p = add("curves", "loss, top-1 error and learning rate against epochs, several runs on one plot", _curves,
            subject=False)
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folders")

    for name, text in (("confusion", "the confusion matrix of the test set"),
                       ("mistakes", "a grid of misclassified test images")):
        p = add(name, text, _confusion if name == "confusion" else _mistakes)
        p.add_argument("--data-dir", help="where the run's data set lives (default: where the run found it)")
    p.add_argument("--count", type=int, default=32, help="images shown, most confident first (default 32)")

    p = add("architecture", "the traced graph: branches side by side, skips, merges, output shapes; RUN may also "
            "be an import path (torchvision.models:mobilenet_v2), a file (path/to/net.py:Net) or timm:NAME",
            _architecture)
    p.add_argument("--depth", type=_depth, default="auto",
                   help="fold blocks nested deeper than D into one box, as 'cnnlab summary --depth' (default: the "
                        "least folding that leaves at most 100 boxes)")
    p.add_argument("--format", nargs="+", choices=("png", "svg"), default=["png", "svg"],
                   help="files to write (default: png svg)")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", default=[],
                   help="constructor argument of a model given by import path or file, repeatable (default: none)")

    report = subparsers.add_parser("report", help="write a run's self-contained report.html",
                                   description="Render a run's figures and write RUN/report.html (images embedded).")
    report.add_argument("subject", metavar="RUN", help="a run folder")
    report.add_argument("--data-dir", help="where the run's test images are (default: where the run found them)")
    report.add_argument("--force", action="store_true", help="replace an existing report.html (default: refuse)")
    report.set_defaults(run=_report)


def _depth(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--depth takes a whole number of at least 1 or 'auto', not '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--depth must be at least 1, not {value}")
    return value


def _open(args):
    from cnnlab.analysis import parse_shape
    from cnnlab.viz.figure import replace_existing
    from cnnlab.viz.subject import open_subject

    replace_existing.set(args.force)
    subject = open_subject(args.subject, parse_shape(args.input) if args.input else None)
    return subject, subject.out_dir(args.out)


def _image(args, subject, out):
    """The command's image as the model's input, with the warnings and the --show-input figure."""
    from cnnlab.errors import warn
    from cnnlab.viz.inputs import input_warning, plot_input, steps_of

    x = subject.load_input(args.image, invert=args.invert)
    if subject.run is not None and (warning := input_warning(args.image, x, subject.mean, subject.std)):
        warn(warning)
    if args.show_input:
        _print(plot_input(args.image, x, subject.mean, subject.std, out, steps_of((subject.config or {}).get("dataset")),
                          args.invert))
    return x


def _print(*paths) -> None:
    for path in paths:
        print(path)


def _ints(text: str, what: str) -> list[int]:
    from cnnlab.errors import CnnlabError

    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CnnlabError(f"{what} must be comma-separated whole numbers, e.g. 3,17,108; not '{text}'") from None


def _positive(value, flag):
    from cnnlab.errors import CnnlabError

    if value is not None and value < 1:
        raise CnnlabError(f"{flag} must be at least 1, not {value}")


def _stem(args) -> str:
    from cnnlab.viz.inputs import stem_of

    return stem_of(args.image)


def _filters(args):
    from cnnlab.viz.filters import plot_filters

    _positive(args.count, "--count")
    subject, out = _open(args)
    _print(plot_filters(subject, out, args.layer, args.count)[0])


def _activations(args):
    from cnnlab.viz.activations import plot_activations

    _positive(args.count, "--count")
    subject, out = _open(args)
    layers = list(args.layer or []) + [n.strip() for n in (args.layers or "").split(",") if n.strip()]
    x = _image(args, subject, out)
    _print(*(path for path, _ in plot_activations(subject, x, out, layers or None, args.count, _stem(args))))


def _overlay(args):
    from cnnlab.viz.activations import plot_overlay

    _positive(args.count, "--count")
    subject, out = _open(args)
    channels = _ints(args.channels, "--channels") if args.channels else None
    _print(plot_overlay(subject, _image(args, subject, out), out, args.layer, channels, args.count, _stem(args))[0])


def _cam(args):
    from cnnlab.errors import warn
    from cnnlab.viz.cam import DEFAULT_RULE, default_cam_layer, plot_cam

    subject, out = _open(args)
    x = _image(args, subject, out)
    if args.layer is None:
        layer = default_cam_layer(subject.model, subject.input_shape)
        warn(f"CAM layer {layer}: {DEFAULT_RULE} (choose another with --layer)")
    path, _, _, check = plot_cam(subject, x, out, args.method, args.target, args.layer, _stem(args), args.sanity)
    if check is not None and check.flagged:
        warn(check.verdict)
    _print(path)


def _deconv(args):
    from cnnlab.errors import warn
    from cnnlab.viz.deconv import plot_deconv

    _positive(args.count, "--count")
    subject, out = _open(args)
    path, _, check = plot_deconv(subject, _image(args, subject, out), out, args.layer, args.count, _stem(args),
                                 args.sanity)
    if check is not None and check.flagged:
        warn(check.verdict)
    _print(path)


def _curves(args):
    from pathlib import Path

    from cnnlab.run import FIGURES, require_run_dir
    from cnnlab.viz.curves import plot_curves
    from cnnlab.viz.figure import replace_existing

    replace_existing.set(args.force)
    runs = [require_run_dir(run) for run in args.runs]
    folder = Path(args.out) if args.out else runs[0] / FIGURES
    name = "curves.png" if len(runs) == 1 else "curves-" + "-vs-".join(r.resolve().name for r in runs[:4]) + ".png"
    _print(plot_curves(runs, folder / name)[0])


def _run_subject(args):
    from cnnlab.errors import CnnlabError
    from cnnlab.run import is_run

    if not is_run(args.subject):
        raise CnnlabError(f"{args.subject} is not a run folder: the {args.figure} needs a trained run and its test set")
    return _open(args)


def _confusion(args):
    from cnnlab.viz.confusion import plot_confusion
    from cnnlab.viz.predictions import predict_test_set

    subject, out = _run_subject(args)
    _print(plot_confusion(subject, predict_test_set(subject, args.data_dir).predictions, out)[0])


def _mistakes(args):
    from cnnlab.viz.confusion import plot_mistakes
    from cnnlab.viz.predictions import predict_test_set

    _positive(args.count, "--count")
    subject, out = _run_subject(args)
    _print(plot_mistakes(subject, predict_test_set(subject, args.data_dir), out, args.count)[0])


def _architecture(args):
    from cnnlab.models.external import is_external
    from cnnlab.viz.architecture import plot_architecture

    formats = tuple(dict.fromkeys(args.format))
    if is_external(args.subject):  # a model from outside the zoo: it has no run and no card
        from pathlib import Path

        from cnnlab.analysis import parse_shape
        from cnnlab.models.external import build_model, model_args
        from cnnlab.viz.figure import replace_existing

        replace_existing.set(args.force)
        shape = parse_shape(args.input) if args.input else None
        out = Path(args.out) if args.out else Path("figures") / args.subject.replace("/", "_").replace(":", "_")
        model = build_model(args.subject, model_args(args.arg))
        paths, _ = plot_architecture(model, shape, out / "architecture", args.subject, args.depth, formats)
    else:
        subject, out = _open(args)
        paths, _ = plot_architecture(subject.model, subject.input_shape, out / "architecture", subject.name,
                                     args.depth, formats)
    _print(*paths)


def _report(args):
    from cnnlab.commands.train import write_run_summary
    from cnnlab.run import SUMMARY_JSON, require_run_dir
    from cnnlab.run.model import load_model
    from cnnlab.viz.report import write_report

    run = require_run_dir(args.subject)
    if not (run / SUMMARY_JSON).is_file():  # a run from before summary.json: write it first
        write_run_summary(run, load_model(run, "last")[0])
    print(write_report(run, args.data_dir, args.force))
