"""`cnnlab explore RUN|MODEL [IMAGE ...]`: the network, its feature maps and their arithmetic in one
self-contained HTML page (`--serve`: the same page live, from a local server)."""

from __future__ import annotations

ORDER = 45


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explore", help="an interactive page: every layer's maps, one unit's receptive field and arithmetic",
        description="Write one self-contained HTML page (no network access; open it from disk) that shows the "
        "network as columns of feature maps, a map in detail with its kernels, one unit's exact receptive field "
        "and its arithmetic with the real numbers, the softmax and Grad-CAM. With --serve, serve the page from a "
        "local server that runs the model on uploaded or drawn images (a local tool, not a public service).")
    p.add_argument("subject", metavar="RUN|MODEL", help="a run folder (its best checkpoint) or a zoo model name "
                   "(random weights, said on the page)")
    p.add_argument("images", metavar="IMAGE", nargs="*",
                   help="image files to embed (default: test images of the run's data set, or simple patterns)")
    p.add_argument("--out", help="the HTML file (default: RUN/explore.html, or ./explore-MODEL.html)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--lang", default="en", choices=("en", "zh"), help="labels in English or Chinese (switchable "
                   "on the page)")
    p.add_argument("--count", type=int, help="images embedded when none are named (default: 8 test images of a "
                   "run, 3 patterns for a zoo model)")
    p.add_argument("--depth", type=int, help="fold blocks nested deeper than D, as summary --depth (default: the "
                   "least folding that keeps at most 80 columns)")
    p.add_argument("--channels", type=int, help="channels kept per layer (default: as many as keep the file under "
                   "7.5 MiB with at least 8 channels, else at most 8 under 20 MiB)")
    p.add_argument("--cam-classes", type=int, help="classes with a Grad-CAM map per image (default: every class "
                   "up to 10, else the top 5; 0: none, which saves a backward pass per image on big models)")
    p.add_argument("--serve", action="store_true", help="serve the page live instead of writing it")
    p.add_argument("--port", type=int, default=8765, help="port for --serve (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address for --serve (default 127.0.0.1: this computer only)")
    p.set_defaults(run=_explore)


def _explore(args):
    from cnnlab.errors import CnnlabError

    for flag in ("count", "depth", "channels"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CnnlabError(f"--{flag} must be at least 1, not {value}")
    if args.count is not None and args.images:
        raise CnnlabError("--count chooses how many default images to embed: leave it out when naming IMAGE files")
    if not 0 <= args.port <= 65535:
        raise CnnlabError(f"--port must be 0..65535, not {args.port}")
    if args.cam_classes is not None and args.cam_classes < 0:
        raise CnnlabError(f"--cam-classes must be 0 or more, not {args.cam_classes}")
    options = {"depth": args.depth, "channels": args.channels, "count": args.count, "cam_classes": args.cam_classes}
    if args.serve:
        return _serve(args, options)
    if args.host != "127.0.0.1" or args.port != 8765:
        raise CnnlabError("--host and --port are for --serve")
    from cnnlab.viz.explore import write_explorer

    print(write_explorer(args.subject, args.images, args.out, args.lang, args.force, **options))


def _serve(args, options):
    from cnnlab.errors import CnnlabError
    from cnnlab.viz.explore import build_page
    from cnnlab.viz.explore.inputs import check_files, chosen_inputs
    from cnnlab.viz.explore.server import make_server, serve
    from cnnlab.viz.subject import open_subject

    if args.out or args.force:
        raise CnnlabError("--serve writes no file: leave out --out and --force")
    check_files(args.images)
    subject = open_subject(args.subject)
    server = make_server(args.host, args.port)  # a port in use fails before the model runs
    try:
        images = chosen_inputs(subject, args.images, options.pop("count"))
        explorer, page = build_page(subject, images, args.lang, live=True, **options)
    except BaseException:
        server.server_close()
        raise
    serve(server, explorer, page, subject.title)

