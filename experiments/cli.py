"""The ``planlab`` command line.

Each sub-command lives in its own module under :mod:`experiments.commands` with
two functions, ``add_parser(subparsers)`` and ``run(args) -> int``.  This file
only dispatches, and turns every user mistake (:class:`PlanlabError`) into one
clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Sequence

from planning.errors import PlanlabError

#: Sub-command name -> module under experiments.commands.
COMMANDS: dict[str, str] = {
    "inspect": "inspect",
    "model": "model",
    "plan": "plan",
    "simulate": "simulate",
    "calibrate": "calibrate",
    "execute": "execute",
    "agent": "agent",
    "run": "run",
    "report": "report",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line (argparse's own code)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"planlab: error: {message} (see 'planlab {self.prog.split()[-1]} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="planlab", description="Plan, simulate and execute DAG workflows; compare planned vs real.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"experiments.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"experiments.commands.{module_name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except PlanlabError as exc:
        sys.stderr.write(f"planlab {args.command}: error: {exc.one_line()}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"planlab {args.command}: interrupted\n")
        return 130


def print_json(data: Any) -> None:
    """Print JSON for ``--json`` outputs (NaN becomes null)."""
    sys.stdout.write(json.dumps(_clean(data), indent=2, default=_default) + "\n")


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
