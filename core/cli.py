"""The ``fauve`` console script.

Each subcommand lives in its own module, which exposes ``register(subparsers)``; that function adds
its parser and sets ``func`` (called with the parsed args; returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fauve import __version__
from fauve.errors import FauveError

COMMANDS = [
    "fauve_bridge.gimp_install",
    "fauve_bridge.serve",
    "fauve.commands_stylize",
    "fauve.commands_optimize",
    "fauve.commands_train",
    "fauve.commands_hub",
    "fauve.export",
    "fauve.bench",
    "fauve.commands_eval",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fauve", description="Real-time neural style transfer: stylize, train, serve, publish."
    )
    parser.add_argument("--version", action="version", version=f"fauve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FauveError as err:
        print(f"fauve {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"fauve {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
