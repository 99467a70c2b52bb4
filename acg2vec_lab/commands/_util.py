"""Small helpers shared by command modules."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


class CLIError(Exception):
    """A usage problem reported as ``error: <message>`` with exit code 2 (no traceback)."""


def add_command(sub: Any, name: str, help: str, examples: str, func: Any) -> argparse.ArgumentParser:
    """Add a subcommand with its one-line help, an examples epilog and its handler."""
    parser = sub.add_parser(
        name, help=help, description=help, epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
