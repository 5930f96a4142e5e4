"""`cnnlab list [PATTERN]` and `cnnlab show NAME`: what the zoo holds."""

ORDER = 10


def register(subparsers) -> None:
    listing = subparsers.add_parser(
        "list",
        help="the model zoo: name, family, year, parameters, default input, paper",
        description="List the zoo's models. PATTERN is a shell pattern (vgg*, *_bn) matched against names "
        "and aliases; a plain word matches anywhere in the name (list resnet).",
    )
    listing.add_argument("pattern", nargs="?", default="*", help="filter, e.g. 'vgg*' or 'resnet'")
    listing.add_argument("--format", choices=("table", "md", "csv", "json"), default="table")
    listing.set_defaults(run=run_list)

    show = subparsers.add_parser("show", help="a model's card and module tree",
                                 description="Print a model's card (paper, input, reference numbers, "
                                 "initialisation, notes) and its module tree. Builds it on the meta "
                                 "device: instant, and no memory for weights.")
    show.add_argument("model", help="zoo model name or alias (see 'cnnlab list')")
    show.set_defaults(run=run_show)


def run_list(args) -> int:
    from cnnlab.analysis.formatters import grid
    from cnnlab.errors import CnnlabError
    from cnnlab.models import card, list_models

    pattern = args.pattern if any(ch in args.pattern for ch in "*?[") else f"*{args.pattern}*"
    names = list_models(pattern)
    if not names:
        raise CnnlabError(f"no model matches '{args.pattern}': run 'cnnlab list' to see the zoo")
    header = ["name", "aliases", "family", "year", "params", "input", "paper"]
    body = []
    for name in names:
        c = card(name)
        params = f"{c.params:,}" if args.format in ("table", "md") and c.params is not None else c.params
        body.append([name, ", ".join(c.aliases), c.family, c.paper.year, params,
                     "x".join(map(str, c.input_shape)), c.paper.title])
    print(grid(header, body, args.format, numeric={3, 4}), end="")
    return 0


def run_show(args) -> int:
    import torch

    from cnnlab.models import card, create
    from cnnlab.models.zoo import options

    c = card(args.model)
    with torch.device("meta"):
        model = create(c.name, guard=False)
        # cards count the inference network: GoogLeNet's auxiliary heads train, then go
        inference = create(c.name, guard=False, aux_logits=False) if "aux_logits" in options(c.name) else model
    counted = f"{_trainable(model):,} trainable (counted)"
    if inference is not model:
        counted += f"; {_trainable(inference):,} without the training-only auxiliary heads"
    fields = [
        ("name", c.name + (f" (aliases: {', '.join(c.aliases)})" if c.aliases else "")),
        ("family", c.family),
        ("paper", str(c.paper)),
        ("input", " x ".join(map(str, c.input_shape))),
        ("classes", c.num_classes),
        ("parameters", counted + (f"; card {c.params:,}" if c.params is not None else "")),
        ("MACs", f"{c.macs:,} per image" if c.macs is not None else None),
        ("published error", c.published_error),
        ("init", c.init),
        ("notes", c.notes),
    ]
    width = max(len(key) for key, _ in fields)
    for key, value in fields:
        if value not in (None, ""):
            print(f"{key:<{width}}  {value}")
    print()
    print(model)
    return 0


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
