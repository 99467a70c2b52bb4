"""``acg2vec-lab``: the command-line surface, mirroring the original ACG2vec services.

Subcommands are discovered from the modules of :mod:`acg2vec_lab.commands`: a module there defines
``register(subparsers)`` and adds one parser whose ``func`` default takes the parsed arguments and
returns an exit code. Adding a command is adding one file. Command modules import heavy frameworks
inside their ``func`` only, so ``acg2vec-lab --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from acg2vec_lab import commands
from acg2vec_lab.commands._util import CLIError  # noqa: F401  (re-exported for command modules)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acg2vec-lab",
        description="Rebuild, explain and evaluate the ACG2vec models. Every command prints JSON or writes files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `acg2vec-lab COMMAND --help` for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from acg2vec_lab import device, progress

    try:
        if getattr(args, "no_progress", False):
            progress.set_enabled(False)
        if hasattr(args, "device"):
            device.request(args.device)  # before any framework import: "cpu" hides the GPUs
        return int(args.func(args) or 0)
    except device.DeviceError as exc:
        print(f"acg2vec-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except CLIError as exc:
        print(f"acg2vec-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130
    finally:
        progress.set_enabled(None)  # main() called in-process (tests, notebooks) leaves the switch as it was


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
