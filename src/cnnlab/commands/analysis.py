"""`cnnlab summary`, `cnnlab calc conv|pool|stack`, `cnnlab compare`: the analyzer's commands."""

ORDER = 20

FORMATS = ("table", "md", "csv", "json")


def register(subparsers) -> None:
    summary = subparsers.add_parser(
        "summary",
        help="per-layer shapes, parameters, memory, MACs and receptive fields (never runs on data)",
        description="One row per layer for a zoo model at an input size, computed on the meta device. "
        "FLOPs = 2 × MACs; see docs/analysis.md for what is counted.",
    )
    summary.add_argument("model", help="zoo model name (see 'cnnlab list')")
    _input_options(summary)
    summary.add_argument("--depth", type=int, default=None, help="fold blocks nested deeper than D into one row")
    summary.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                         help="precision of the training-memory estimate (bf16/fp16 = autocast)")
    summary.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "sgd-nomomentum"), default="sgd",
                         help="optimizer state in the training-memory estimate (sgd = with momentum)")
    summary.set_defaults(run=run_summary)

    calc = subparsers.add_parser("calc", help="the lecture formulas: conv/pool output size, stacked receptive fields")
    kinds = calc.add_subparsers(dest="kind", metavar="KIND", required=True)
    conv = kinds.add_parser("conv", help="output size, parameters and MACs of one convolution")
    _window_options(conv)
    conv.add_argument("--dilation", type=int, default=1)
    conv.add_argument("--channels", type=int, help="input channels C (for parameters and MACs)")
    conv.add_argument("--filters", type=int, help="number of filters K (for parameters and MACs)")
    conv.add_argument("--groups", type=int, default=1)
    conv.set_defaults(run=run_calc_conv)
    pool = kinds.add_parser("pool", help="output size of one pooling layer")
    _window_options(pool, stride_default=None)
    pool.add_argument("--ceil-mode", action="store_true", help="round up as PyTorch's ceil_mode=True")
    pool.set_defaults(run=run_calc_pool)
    stack = kinds.add_parser("stack", help="receptive field and parameters of stacked layers (the VGG argument)")
    stack.add_argument("--kernel", type=int, default=3)
    stack.add_argument("--layers", type=int, required=True)
    stack.add_argument("--stride", type=int, default=1)
    stack.add_argument("--channels", type=int, help="channels C (else the result is in units of C²)")
    stack.set_defaults(run=run_calc_stack)

    compare = subparsers.add_parser("compare", help="totals of several models side by side")
    compare.add_argument("models", nargs="+", metavar="MODEL")
    _input_options(compare, each_default=True)
    compare.set_defaults(run=run_compare)


def _input_options(parser, each_default: bool = False) -> None:
    parser.add_argument("--input", metavar="CxHxW",
                        help="input shape, e.g. 3x224x224 (default: " +
                        ("each model's own" if each_default else "the model's card") + ")")
    parser.add_argument("--batch", type=int, default=1, help="batch size for the memory figures (default 1)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="column headers in English or Chinese")


def _window_options(parser, stride_default=1) -> None:
    parser.add_argument("--size", type=int, required=True, help="input width W (square input)")
    parser.add_argument("--kernel", type=int, required=True, help="window size F")
    parser.add_argument("--stride", type=int, default=stride_default,
                        help="stride S" + (" (default: the kernel size)" if stride_default is None else ""))
    parser.add_argument("--padding", type=int, default=0, help="zero padding P per side")


def run_summary(args) -> None:
    from cnnlab.analysis import render, summary

    result = summary(args.model, args.input, args.batch, depth=args.depth, precision=args.precision,
                     optimizer=args.optimizer)
    print(render(result, args.format, args.lang), end="")


def run_calc_conv(args) -> None:
    from cnnlab.analysis.calc import conv

    print(conv(args.size, args.kernel, args.stride, args.padding, args.dilation, args.channels, args.filters,
               args.groups), end="")


def run_calc_pool(args) -> None:
    from cnnlab.analysis.calc import pool

    print(pool(args.size, args.kernel, args.stride, args.padding, args.ceil_mode), end="")


def run_calc_stack(args) -> None:
    from cnnlab.analysis.calc import stack_text

    print(stack_text(args.kernel, args.layers, args.channels, args.stride), end="")


def run_compare(args) -> None:
    from cnnlab.analysis.compare import compare

    print(compare(args.models, args.input, args.batch, args.format, args.lang), end="")
