"""`cnnlab summary`, `cnnlab calc conv|pool|stack`, `cnnlab compare`: the analyzer's commands.

Nothing heavy is imported here: `cnnlab calc` is arithmetic and answers without importing torch.
"""

ORDER = 20

FORMATS = ("table", "md", "csv", "json", "html")
LANGS = ("en", "zh")
MODEL_HELP = ("a zoo name (cnnlab list), a run folder written by 'cnnlab train', an import path "
              "(torchvision.models:mobilenet_v2), a file (path/to/net.py:Net) or timm:NAME")


def register(subparsers) -> None:
    summary = subparsers.add_parser(
        "summary",
        help="per-layer shapes, parameters, memory, MACs and receptive fields (never runs on data)",
        description="One row per layer for a model at an input size, computed on the meta device. "
        "FLOPs = 2 × MACs; see docs/analysis.md for what is counted.",
    )
    summary.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    _model_arguments(summary)
    _input_options(summary, "the model card's; a run's from its config.json")
    summary.add_argument("--depth", type=int, default=None,
                         help="fold blocks nested deeper than D into one row (default: no folding)")
    summary.add_argument("--columns", metavar="LIST",
                         help="table columns, comma-separated: groups window, shape, cost, rf, lecture, all, or single "
                         "columns (kernel, stride, padding, units, input, output, params, memory, macs, other, rf, "
                         "jump, pad, start, notes) (default: window, output, params, memory, macs, rf, notes)")
    summary.add_argument("--wide", action="store_true",
                         help="every column, notes inline, however wide (default: off, 120 columns)")
    summary.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                         help="precision of the training-memory estimate, bf16/fp16 = autocast (default: %(default)s)")
    summary.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "sgd-nomomentum"), default="sgd",
                         help="optimizer state in the training-memory estimate, sgd = with momentum "
                         "(default: %(default)s)")
    summary.add_argument("--unit", metavar="LAYER:Y,X",
                         help="print the input box that unit (Y, X) of LAYER's output sees (default: the table)")
    summary.add_argument("--fits", metavar="SIZE",
                         help="print the largest batch whose training-memory estimate fits in SIZE, e.g. 24GiB "
                         "(GiB = 2³⁰ B, GB = 10⁹ B) (default: the table)")
    summary.set_defaults(run=run_summary)

    calc = subparsers.add_parser("calc", help="the lecture formulas: conv/pool output size, stacked receptive fields",
                                 description="Arithmetic only: answers at once, without loading PyTorch.")
    kinds = calc.add_subparsers(dest="kind", metavar="KIND", required=True)
    conv = kinds.add_parser("conv", help="output size, parameters and MACs of one convolution")
    _window_options(conv)
    conv.add_argument("--dilation", type=int, default=1, help="dilation d: the window spans d(F − 1) + 1 "
                      "(default: %(default)s)")
    conv.add_argument("--channels", type=int, help="input channels C, for parameters and MACs (default: none)")
    conv.add_argument("--filters", type=int, help="number of filters K, for parameters and MACs (default: none)")
    conv.add_argument("--groups", type=int, default=1, help="grouped convolution: C and K split into G groups "
                      "(default: %(default)s)")
    conv.set_defaults(run=run_calc_conv)
    pool = kinds.add_parser("pool", help="output size of one pooling layer")
    _window_options(pool, stride_default=None)
    pool.add_argument("--ceil-mode", action="store_true", help="round up as PyTorch's ceil_mode=True "
                      "(default: off, round down)")
    pool.set_defaults(run=run_calc_pool)
    stack = kinds.add_parser("stack", help="receptive field and parameters of stacked layers (the VGG argument)")
    stack.add_argument("--kernel", type=int, default=3, help="window size F of every layer (default: %(default)s)")
    stack.add_argument("--layers", type=int, required=True, help="number of stacked layers L (required)")
    stack.add_argument("--stride", type=int, default=1, help="stride S of every layer (default: %(default)s)")
    stack.add_argument("--channels", type=int, help="channels C (default: none, the result is in units of C²)")
    stack.set_defaults(run=run_calc_stack)
    for parser in (conv, pool, stack):
        _lang_option(parser)

    compare = subparsers.add_parser("compare", help="totals of several models side by side",
                                    description="One row of totals per model; parameters without training-only "
                                    "auxiliary heads, which get their own column.")
    compare.add_argument("models", nargs="+", metavar="MODEL", help=MODEL_HELP)
    _model_arguments(compare)
    _input_options(compare, "each model's own")
    compare.set_defaults(run=run_compare)


def _model_arguments(parser) -> None:
    parser.add_argument("--arg", action="append", metavar="KEY=VALUE", default=[],
                        help="constructor argument of the model, repeatable, e.g. --arg num_classes=10 "
                        "(default: none)")


def _input_options(parser, default_input: str) -> None:
    parser.add_argument("--input", metavar="CxHxW",
                        help=f"input shape, three positive numbers, e.g. 3x224x224 (default: {default_input})")
    parser.add_argument("--batch", type=int, default=1, help="batch size for the memory figures (default: %(default)s)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: %(default)s)")
    parser.add_argument("--layout", choices=("chw", "hwc"), default="chw",
                        help="print shapes as C×H×W or, as the lecture tables do, H×W×C (default: %(default)s)")
    _lang_option(parser)


def _lang_option(parser) -> None:
    parser.add_argument("--lang", choices=LANGS, default="en",
                        help="English, or the Chinese lecture notes' terms (default: %(default)s)")


def _window_options(parser, stride_default=1) -> None:
    parser.add_argument("--size", type=int, required=True, help="input width W, square input (required)")
    parser.add_argument("--kernel", type=int, required=True, help="window size F (required)")
    default = "the kernel size" if stride_default is None else "%(default)s"
    parser.add_argument("--stride", type=int, default=stride_default, help=f"stride S (default: {default})")
    parser.add_argument("--padding", type=int, default=0, help="zero padding P per side (default: %(default)s)")


def _model_input(args, spec: str):
    """(model, constructor arguments, input shape or None, label suffix) for a model or a run folder."""
    from pathlib import Path

    from cnnlab.errors import CnnlabError
    from cnnlab.models.external import model_args

    if not Path(spec).is_dir():
        return spec, model_args(args.arg), args.input, ""
    from cnnlab.run import read_config

    if args.input or args.arg:
        raise CnnlabError(f"{spec} is a run: its model and input come from its config.json, so drop --input and --arg")
    try:
        config = read_config(spec)
        model, kwargs, shape = config["model"], config.get("model_kwargs") or {}, tuple(config["input_shape"])
    except ValueError as error:
        raise CnnlabError(f"{spec}/config.json is not valid JSON ({error}); 'cnnlab train' writes it") from None
    except (KeyError, TypeError) as error:
        raise CnnlabError(f"{spec}/config.json lacks the model or its input shape ({error}); 'cnnlab train' "
                          "writes both") from None
    return model, kwargs, shape, f" (run {Path(spec).resolve().name})"


def run_summary(args) -> None:
    from dataclasses import replace

    from cnnlab.analysis import render, summary

    model, kwargs, shape, suffix = _model_input(args, args.model)
    result = summary(model, shape, args.batch, depth=args.depth, precision=args.precision,
                     optimizer=args.optimizer, model_kwargs=kwargs)
    result = replace(result, model=result.model + suffix) if suffix else result
    if args.fits is None and args.unit is None:
        print(render(result, args.format, args.lang, columns=args.columns, wide=args.wide, layout=args.layout), end="")
    if args.fits is not None:
        from cnnlab.analysis.fits import fits_text

        print(fits_text(result, args.fits, args.precision, args.optimizer, args.format, args.lang), end="")
    if args.unit is not None:
        from cnnlab.analysis.units import unit_text

        print(unit_text(result, args.unit, args.lang, args.layout), end="")


def run_calc_conv(args) -> None:
    from cnnlab.analysis.calc import conv

    print(conv(args.size, args.kernel, args.stride, args.padding, args.dilation, args.channels, args.filters,
               args.groups, lang=args.lang), end="")


def run_calc_pool(args) -> None:
    from cnnlab.analysis.calc import pool

    print(pool(args.size, args.kernel, args.stride, args.padding, args.ceil_mode, lang=args.lang), end="")


def run_calc_stack(args) -> None:
    from cnnlab.analysis.calc import stack_text

    print(stack_text(args.kernel, args.layers, args.channels, args.stride, lang=args.lang), end="")


def run_compare(args) -> None:
    from cnnlab.analysis.compare import compare
    from cnnlab.models.external import model_args

    print(compare(args.models, args.input, args.batch, args.format, args.lang, layout=args.layout,
                  model_kwargs=model_args(args.arg)), end="")
