"""`cnnlab list [PATTERN]` and `cnnlab show NAME`: what the zoo holds."""

import re

ORDER = 10


def register(subparsers) -> None:
    listing = subparsers.add_parser(
        "list",
        help="the model zoo: name, family, year, parameters, default input, paper",
        description="List the zoo's models, family by family in the order the papers appeared, names in natural "
        "order within a family (resnet18 before resnet101). PATTERN is a shell pattern (vgg*, *_bn) matched against "
        "names and aliases; a plain word matches anywhere in the name (list resnet).",
    )
    listing.add_argument("pattern", nargs="?", default="*", help="filter, e.g. 'vgg*' or 'resnet' "
                         "(default: %(default)s, every model)")
    listing.add_argument("--format", choices=("table", "md", "csv", "json"), default="table",
                         help="output format (default: %(default)s)")
    _lang_option(listing)
    listing.set_defaults(run=run_list)

    show = subparsers.add_parser("show", help="a model's card and module tree",
                                 description="Print a model's card (paper, input, reference numbers, "
                                 "initialisation, notes) and its module tree. Builds it on the meta "
                                 "device: instant, and no memory for weights.")
    show.add_argument("model", help="zoo model name or alias (see 'cnnlab list')")
    _lang_option(show)
    show.set_defaults(run=run_show)


def _lang_option(parser) -> None:
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="English or Chinese labels; the cards' own text stays English (default: %(default)s)")


def natural_key(name: str) -> tuple:
    """'resnet18' < 'resnet101': digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def zoo_order(names: list[str]) -> list[str]:
    """Families in the order their first paper appeared, then natural order within a family."""
    from cnnlab.models import card

    first_year: dict[str, int] = {}
    for name in names:
        c = card(name)
        first_year[c.family] = min(first_year.get(c.family, c.paper.year), c.paper.year)
    return sorted(names, key=lambda name: (first_year[card(name).family], card(name).family, natural_key(name)))


def run_list(args) -> int:
    from cnnlab.analysis.formatters import grid
    from cnnlab.analysis.i18n import ZOO, words
    from cnnlab.errors import CnnlabError
    from cnnlab.models import card, list_models

    text = words(ZOO, args.lang)
    pattern = args.pattern if any(ch in args.pattern for ch in "*?[") else f"*{args.pattern}*"
    names = list_models(pattern)
    if not names:
        raise CnnlabError(f"no model matches '{args.pattern}': run 'cnnlab list' to see the zoo")
    keys = ["name", "aliases", "family", "year", "params", "input", "paper"]
    header = keys if args.format in ("csv", "json") else [text[k] for k in keys]
    body = []
    for name in zoo_order(names):
        c = card(name)
        params = f"{c.params:,}" if args.format in ("table", "md") and c.params is not None else c.params
        body.append([name, ", ".join(c.aliases), c.family, c.paper.year, params,
                     "x".join(map(str, c.input_shape)), c.paper.title])
    print(grid(header, body, args.format, numeric={3, 4}), end="")
    return 0


def run_show(args) -> int:
    from cnnlab.analysis.formatters import width
    from cnnlab.analysis.i18n import ZOO, words
    from cnnlab.models import card, create
    from cnnlab.models.probe import build_on_meta
    from cnnlab.models.zoo import options

    text = words(ZOO, args.lang)
    c = card(args.model)
    model = build_on_meta(lambda: create(c.name, guard=False))
    # cards count the inference network: GoogLeNet's auxiliary heads train, then go
    has_aux = "aux_logits" in options(c.name)
    inference = build_on_meta(lambda: create(c.name, guard=False, aux_logits=False)) if has_aux else model
    counted = text["counted"].format(count=f"{_trainable(model):,}")
    if inference is not model:
        counted += "; " + text["without_aux"].format(count=f"{_trainable(inference):,}")
    fields = [
        ("name", c.name + (f" ({text['alias_list'].format(aliases=', '.join(c.aliases))})" if c.aliases else "")),
        ("family", c.family),
        ("paper", str(c.paper)),
        ("input", " x ".join(map(str, c.input_shape))),
        ("classes", c.num_classes),
        ("parameters", counted + ("; " + text["card"].format(count=f"{c.params:,}") if c.params is not None else "")),
        ("MACs", text["per_image"].format(count=f"{c.macs:,}") if c.macs is not None else None),
        ("published error", c.published_error),
        ("init", c.init),
        ("notes", c.notes),
    ]
    size = max(width(text[key]) for key, _ in fields)
    for key, value in fields:
        if value not in (None, ""):
            print(f"{text[key]}{' ' * (size - width(text[key]))}  {value}")
    print()
    print(model)
    return 0


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
