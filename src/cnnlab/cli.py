"""The `cnnlab` command: argument parsing only.

Each module in `cnnlab.commands` adds its subcommands through `register(subparsers)` and sets
`run=function` on its parsers; this file finds them, parses, and turns user errors (and file-system
errors) into one line and exit code 2. A mistyped flag or subcommand gets "did you mean".
"""

import argparse
import difflib
import pkgutil
import sys
from importlib import import_module

from cnnlab import __version__, commands
from cnnlab.errors import CnnlabError


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default in its help, except "not given" (None) and off switches:
    for the training settings, None means "the recipe's", which the help text says."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and suggestions for mistyped flags and subcommands."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        if "invalid choice" in message and "(choose from" in message:
            wrong = message.split("invalid choice: ")[1].split(" (choose from")[0].strip("'")
            choices = [c.strip(" '") for c in message.split("(choose from ")[1].rstrip(")").split(",")]
            message = message.split(" (choose from")[0] + _suggestion(wrong, choices, len(choices) <= 6)
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)

    def unknown(self, extra: list[str]) -> None:
        """The one-line error for arguments this (sub)command does not take."""
        options = [o for action in self._actions for o in action.option_strings if action.help != argparse.SUPPRESS]
        flags = [token.split("=")[0] for token in extra if token.startswith("-")]
        if not flags:
            self.error(f"unexpected argument(s) {' '.join(extra)}")
        self.error(f"unknown option {flags[0]}" + _suggestion(flags[0], options, False))


def _suggestion(wrong: str, choices: list[str], list_all: bool) -> str:
    close = difflib.get_close_matches(wrong, choices, n=2, cutoff=0.7)
    if close:
        return f": did you mean {' or '.join(close)}?"
    return f": choose from {', '.join(choices)}" if list_all else ""


def build_parser() -> Parser:
    parser = Parser(prog="cnnlab", description="Build, measure, train and see inside the classic convolutional networks.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    modules = [import_module(f"cnnlab.commands.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    for module in sorted(modules, key=lambda m: (m.ORDER, m.__name__)):
        module.register(subparsers)
    return parser


def _chosen(parser: Parser, args) -> Parser:
    """The innermost subcommand's parser (e.g. `viz cam`'s), to judge its unknown options."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _chosen(action.choices[getattr(args, action.dest)], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _chosen(parser, args).unknown(extra)
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
