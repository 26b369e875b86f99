"""The ``planlab`` command line.

Each sub-command lives in its own module under :mod:`experiments.commands` with
two functions, ``add_parser(subparsers)`` and ``run(args) -> int``.  This file
only dispatches, checks the arguments every command shares (finite numbers in
their ranges, output paths that can be written), and turns every user mistake
(:class:`PlanlabError`, a file that cannot be read or written) into one clear
line on stderr and exit status 2, never a traceback.  Ctrl-C at any moment is
one line and exit status 130; an unexpected error is one line and exit status 1
(``PLANLAB_DEBUG=1`` shows its traceback).
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_importing(signum: int, frame: object) -> None:
    """Ctrl-C before ``main`` runs (before the imports are done): nothing to clean up yet, so one line and exit."""
    sys.stderr.write("planlab: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


_RUN_AS_COMMAND = __name__ == "__main__" or os.path.basename((sys.argv or [""])[0]) == "planlab"
if _RUN_AS_COMMAND and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_importing)   # only for the command, never for an importer

import argparse  # noqa: E402 - after the handler above, so Ctrl-C during the imports is clean
import importlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

from planning.errors import PlanlabError  # noqa: E402

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
    "view": "view",
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


#: Numeric arguments and their valid ranges (inclusive), whichever command has them.
NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "deadline": (1e-9, 1e9), "scale": (0.0, 1e6), "bytes_scale": (0.0, 1e6), "timeout": (0.0, 1e9),
    "task_timeout": (0.0, 1e9), "max_replay_bytes": (0, 2**40), "replications": (0, 1_000_000),
    "seed": (0, 2**63 - 1), "folds": (2, 10_000), "rows": (1, 10_000_000), "kinds": (1, 100_000),
    "max_evaluations": (1, 1_000_000), "runtime_hint": (0.0, 1e9), "hint_cores": (1e-9, 1e6),
    "max_task_kills": (0, 100), "live_hold": (0.0, 86400.0),
}
#: Arguments naming a file to write, and arguments naming a directory to write into.
OUTPUT_FILES = ("history_out",)
OUTPUT_DIRS = ("trace_out",)
#: Text arguments that must not be empty.
TEXT_ARGUMENTS = ("workflow", "planner", "catalog", "sla", "profile", "history", "platform", "redis_url", "pool")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse non-finite or out-of-range numbers and unwritable outputs before a command runs."""
    from planning.errors import ConfigError

    for name, value in vars(args).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{flag} {value} is not a finite number", f"give {flag} a finite number")
        low, high = NUMBER_RANGES.get(name, (-math.inf, math.inf))
        if name == "processes":
            low, high = 1, os.cpu_count() or 1
        if not low <= value <= high:
            raise ConfigError(f"{flag} {value:g} is out of range", f"give {flag} a value between {low:g} and {high:g}")
    params = getattr(args, "param", None)
    if params:
        _check_param_items(params)
    for name in TEXT_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and not value.strip():
            flag = "--" + name.replace("_", "-") if name != "workflow" else "WORKFLOW"
            raise ConfigError(f"{flag} is empty", f"give {flag} a value (see 'planlab {args.command} --help')")
    command = getattr(args, "command", "")
    for name in (*OUTPUT_FILES, *OUTPUT_DIRS, "out"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            is_dir = name in OUTPUT_DIRS or (name == "out" and command in ("run", "report"))
            check_output_path(value, "--" + name.replace("_", "-"), directory=is_dir)


def _check_param_items(items: list[str]) -> None:
    """``--param KEY=VALUE``: the same checks as a config's planner parameters (finite, positive durations)."""
    from experiments.config_values import check_planner_params

    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if sep:
            try:
                parsed[key.strip()] = float(raw)
            except ValueError:
                parsed[key.strip()] = raw
    check_planner_params(parsed, "--param")


def check_output_path(path: str, flag: str, *, directory: bool) -> None:
    """An output path must be creatable: not a directory where a file goes (or a file where a folder goes),
    under an existing ancestor that is a writable directory."""
    from planning.errors import ConfigError

    target = Path(path).expanduser()
    if not str(path).strip():
        raise ConfigError(f"{flag} is empty", f"give {flag} a path")
    if target.exists() and target.is_dir() != directory:
        kind = "a directory" if target.is_dir() else "a file"
        raise ConfigError(f"{flag} {path!r} is {kind}", f"give {flag} the path of a {'directory' if directory else 'file'}")
    ancestor = target if directory and target.exists() else target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path!r} cannot be written ({ancestor} is not a writable directory)",
                          f"give {flag} a path in a writable directory")


def redeliver_swallowed_interrupt(unraisable: Any) -> None:
    """An ``unraisablehook`` that sends Ctrl-C again when Python had to swallow it.

    Why: a KeyboardInterrupt raised inside a callback Python cannot propagate from
    (a weakref callback in the import system's module locks, a ``__del__``) is only
    printed as "Exception ignored" and the command would run on to exit 0.  A timer
    thread sends SIGINT to us again 20 ms later, once this hook and the callback have
    returned, so it raises at an ordinary bytecode (were it swallowed again, this hook
    runs again).  Any other unraisable exception is printed by Python's default hook.
    """
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        import threading

        again = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT))
        again.daemon = True
        again.start()
        return
    sys.__unraisablehook__(unraisable)


def interrupted_underneath(exc: BaseException) -> bool:
    """Whether a Ctrl-C is what ``exc`` wraps (its cause or context, at any depth).

    Why: Python re-raises some exceptions wrapped, e.g. a KeyboardInterrupt that lands while a
    class body's descriptors are set up (a dataclass being imported) comes out as
    ``RuntimeError: Error calling __set_name__``; that is an interrupt, not a planlab bug.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


class _CtrlC:
    """The command's SIGINT handler: notes that Ctrl-C came, then raises ``KeyboardInterrupt`` as Python's does.

    Why the note: a ``KeyboardInterrupt`` can be swallowed where planlab cannot see it (a
    library's bare ``except:`` around an optional import, a callback Python cannot raise
    from); the command then ran on to its end and exited 0, as if never interrupted (a
    rare CI failure).  With the note, :func:`main` exits 130 with its one line whenever a
    Ctrl-C came, whatever swallowed it; the work already done is saved as usual.
    """

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, signum: int, frame: object) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)


def main(argv: Sequence[str] | None = None) -> int:
    ctrl_c: _CtrlC | None = None
    if signal.getsignal(signal.SIGINT) is _interrupted_while_importing:
        ctrl_c = _CtrlC()
        signal.signal(signal.SIGINT, ctrl_c)                       # from here on: KeyboardInterrupt, with cleanup
        sys.unraisablehook = redeliver_swallowed_interrupt         # the command's own process only
    command, code, line, stops_on_ctrl_c = _run_command(argv)
    if ctrl_c is not None and ctrl_c.seen and code != 130 and not stops_on_ctrl_c:   # a Ctrl-C something swallowed
        code, line = 130, f"{command}: interrupted"
    if line:
        sys.stderr.write(line + "\n")
    return code


def _run_command(argv: Sequence[str] | None) -> tuple[str, int, str | None, bool]:
    """Parse ``argv`` and run its command: the command's name, its exit code, the one line for stderr (if any),
    and whether Ctrl-C is how the command is stopped (``planlab view``, ``planlab agent``: they end with exit 0)."""
    command, stops = "planlab", False
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:   # a usage error (its line is written) or --help
            return command, exc.code if isinstance(exc.code, int) else 2, None, False
        if not getattr(args, "handler", None):
            parser.print_help()
            return command, 2, None, False
        command = f"planlab {args.command}"
        stops = bool(getattr(args, "stops_on_ctrl_c", False))
        check_arguments(args)
        return command, int(args.handler(args) or 0), None, stops
    except PlanlabError as exc:
        return command, 2, f"{command}: error: {exc.one_line()}", stops
    except KeyboardInterrupt:
        return command, 130, f"{command}: interrupted", stops
    except OSError as exc:   # a file that cannot be read or written (the path is in the message)
        text = " ".join(str(exc).split())
        return command, 2, f"{command}: error: {text} (fix: check the path and its permissions)", stops
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
        if interrupted_underneath(exc):
            return command, 130, f"{command}: interrupted", stops
        if os.environ.get("PLANLAB_DEBUG"):
            raise
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
        return command, 1, (f"{command}: internal error: {text} (this is a planlab bug; "
                            "rerun with PLANLAB_DEBUG=1 for the traceback and report it)"), stops


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
