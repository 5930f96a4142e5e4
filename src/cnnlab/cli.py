"""The `cnnlab` command: argument parsing only.

Each module in `cnnlab.commands` adds its subcommands through `register(subparsers)` and sets
`run=function` on its parsers; this file finds them, parses, and turns user errors (and file-system errors) into one line
and exit code 2.
"""

import argparse
import pkgutil
import sys
from importlib import import_module

from cnnlab import __version__, commands
from cnnlab.errors import CnnlabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Build, measure, train and see inside the classic convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [import_module(f"cnnlab.commands.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    for module in sorted(modules, key=lambda m: (m.ORDER, m.__name__)):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except CnnlabError as error:
        print(f"cnnlab: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file-system failure no module turned into a CnnlabError itself
        from cnnlab.run.files import os_error

        print(f"cnnlab: error: {os_error(error, doing='use')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
