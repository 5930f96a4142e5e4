"""Subcommands of the `cnnlab` CLI, one module per subsystem.

A module here defines `ORDER` (its place in `cnnlab --help`) and `register(subparsers)`, which adds
its parsers and sets `run=callable(args) -> int | None` on each. Import heavy modules inside the
run functions so that `cnnlab --help` stays fast.
"""
