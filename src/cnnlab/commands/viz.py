"""`cnnlab viz ...` (figures of a run or a zoo model) and `cnnlab report RUN` (report.html).

Every viz command writes PNGs into the run's figures/ (or ./figures/<model> for a zoo model, or
--out) and prints their paths, one per line.
"""

from __future__ import annotations

ORDER = 40

SUBJECT_HELP = "a run folder (its best checkpoint) or a zoo model name (random weights)"


def register(subparsers) -> None:
    viz = subparsers.add_parser("viz", help="figures: filters, feature maps, CAM, deconv, curves, confusion, architecture",
                                description="Figures of a run or of a zoo model with random weights; prints PNG paths.")
    sub = viz.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    def add(name, help_text, run, image=False, subject=True):
        parser = sub.add_parser(name, help=help_text, description=help_text)
        if subject:
            parser.add_argument("subject", metavar="RUN", help=SUBJECT_HELP)
        if image:
            parser.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, ...)")
        parser.add_argument("--out", help="folder for the PNGs (default: RUN/figures, or ./figures/MODEL)")
        if subject:
            parser.add_argument("--input-shape", help="a model, not a run: input C x H x W, e.g. 3x64x64")
        parser.set_defaults(run=run)
        return parser

    p = add("filters", "the kernels of a convolution layer as a grid", _filters)
    p.add_argument("--layer", help="layer name, e.g. features.c1 or c1 (default: the first convolution)")
    p.add_argument("--max", type=int, help="filters shown (default: 96 colour / 64 grey first layer, 16 deeper)")

    p = add("activations", "response maps of each chosen layer for one image, one figure per layer", _activations, True)
    p.add_argument("--layers", help="comma-separated layer names (default: the convolutions, at most 8)")
    p.add_argument("--max", type=int, default=100, help="channels per layer (default 100)")

    p = add("overlay", "chosen channels' responses laid over the image", _overlay, True)
    p.add_argument("--layer", required=True, help="layer name")
    p.add_argument("--channels", help="comma-separated channel indices (default: the 6 strongest)")

    p = add("cam", "class activation maps over the image, with the top-5 predictions", _cam, True)
    p.add_argument("--method", default="gradcam", choices=("gradcam", "gradcam++", "scorecam"))
    p.add_argument("--target", help="class name or index (default: each of the top-5 classes)")
    p.add_argument("--layer", help="target layer (default: the last spatial feature map)")

    p = add("deconv", "Zeiler & Fergus deconvnet projections of a layer's strongest activations", _deconv, True)
    p.add_argument("--layer", required=True, help="layer name, e.g. features.conv5")
    p.add_argument("--count", type=int, default=9, help="channels projected (default 9, the strongest)")

    p = add("curves", "loss, top-1 error and learning rate against epochs, several runs on one plot", _curves,
            subject=False)
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folders")

    for name, text in (("confusion", "the confusion matrix of the test set"),
                       ("mistakes", "a grid of misclassified test images")):
        p = add(name, text, _confusion if name == "confusion" else _mistakes)
        p.add_argument("--data-dir", help="where the run's data set lives (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    p.add_argument("--count", type=int, default=32, help="images shown (default 32, most confident first)")

    p = add("architecture", "a diagram of the layer stack with output shapes; RUN may also be an import path "
            "(torchvision.models:mobilenet_v2), a file (path/to/net.py:Net) or timm:NAME", _architecture)
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", default=[],
                   help="constructor argument of a model given by import path or file, repeatable (default: none)")

    report = subparsers.add_parser("report", help="write a run's self-contained report.html",
                                   description="Render a run's figures and write RUN/report.html (images embedded).")
    report.add_argument("subject", metavar="RUN", help="a run folder")
    report.add_argument("--data-dir", help="where the run's data set lives (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    report.set_defaults(run=_report)


def _open(args):
    from cnnlab.analysis import parse_shape
    from cnnlab.errors import CnnlabError
    from cnnlab.viz.subject import open_subject

    shape = None
    if args.input_shape:
        shape = parse_shape(args.input_shape)
        if len(shape) != 3:
            raise CnnlabError(f"--input-shape needs channels x height x width, not {args.input_shape}")
    subject = open_subject(args.subject, shape)
    return subject, subject.out_dir(args.out)


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


def _filters(args):
    from cnnlab.viz.filters import plot_filters

    _positive(args.max, "--max")
    subject, out = _open(args)
    _print(plot_filters(subject, out, args.layer, args.max)[0])


def _activations(args):
    from cnnlab.viz.activations import plot_activations

    _positive(args.max, "--max")
    subject, out = _open(args)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    _print(*(path for path, _ in plot_activations(subject, subject.load_input(args.image), out, layers, args.max)))


def _overlay(args):
    from cnnlab.viz.activations import plot_overlay

    subject, out = _open(args)
    channels = _ints(args.channels, "--channels") if args.channels else None
    _print(plot_overlay(subject, subject.load_input(args.image), out, args.layer, channels)[0])


def _cam(args):
    from cnnlab.viz.cam import plot_cam

    subject, out = _open(args)
    _print(plot_cam(subject, subject.load_input(args.image), out, args.method, args.target, args.layer)[0])


def _deconv(args):
    from cnnlab.viz.deconv import plot_deconv

    _positive(args.count, "--count")
    subject, out = _open(args)
    _print(plot_deconv(subject, subject.load_input(args.image), out, args.layer, args.count)[0])


def _curves(args):
    from pathlib import Path

    from cnnlab.rundir import FIGURES, require_run_dir
    from cnnlab.viz.curves import plot_curves

    runs = [require_run_dir(run) for run in args.runs]
    folder = Path(args.out) if args.out else runs[0] / FIGURES
    name = "curves.png" if len(runs) == 1 else "curves-" + "-vs-".join(r.resolve().name for r in runs[:4]) + ".png"
    _print(plot_curves(runs, folder / name)[0])


def _run_subject(args):
    from cnnlab.errors import CnnlabError
    from cnnlab.viz.subject import is_run

    if not is_run(args.subject):
        raise CnnlabError(f"{args.subject} is not a run folder: the {args.figure} needs a trained run and its test set")
    return _open(args)


def _confusion(args):
    from cnnlab.viz.confusion import plot_confusion
    from cnnlab.viz.predictions import predict_test_set

    subject, out = _run_subject(args)
    _print(plot_confusion(subject, predict_test_set(subject, args.data_dir), out)[0])


def _mistakes(args):
    from cnnlab.viz.confusion import plot_mistakes
    from cnnlab.viz.predictions import predict_test_set

    _positive(args.count, "--count")
    subject, out = _run_subject(args)
    _print(plot_mistakes(subject, predict_test_set(subject, args.data_dir), out, args.count)[0])


def _architecture(args):
    from cnnlab.models.external import is_external
    from cnnlab.viz.architecture import plot_architecture

    if is_external(args.subject):  # a model from outside the zoo, drawn with the analyzer's rows only
        from pathlib import Path

        from cnnlab.analysis import parse_shape
        from cnnlab.models.external import build_model, model_args

        shape = parse_shape(args.input_shape) if args.input_shape else None
        out = Path(args.out) if args.out else Path("figures") / args.subject.replace("/", "_").replace(":", "_")
        model = build_model(args.subject, model_args(args.arg))
        _print(plot_architecture(model, shape, out / "architecture.png", args.subject)[0])
        return
    subject, out = _open(args)
    _print(plot_architecture(subject.model, subject.input_shape, out / "architecture.png", subject.name)[0])


def _report(args):
    from cnnlab.viz.report import write_report

    print(write_report(args.subject, args.data_dir))
