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

# Subcommand name -> the module whose ``register(subparsers)`` adds it. Only the module of the command
# being run is imported (some import torch or gradio, which takes seconds); --help imports them all.
COMMANDS: dict[str, str] = {
    "stylize": "fauve.commands_stylize",
    "optimize": "fauve.commands_optimize",
    "train": "fauve.commands_train",
    "eval": "fauve.commands_eval",
    "serve": "fauve_bridge.serve",
    "gimp": "fauve_bridge.gimp_install",
    "hub": "fauve.commands_hub",
    "styles": "fauve.commands_hub",
    "export": "fauve.export",
    "bench": "fauve.bench",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fauve", description="Real-time neural style transfer: stylize, train, serve, publish."
    )
    parser.add_argument("--version", action="version", version=f"fauve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    modules = [COMMANDS[first]] if first in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
