"""Checking one value of an experiment config: its type, its range, its path, the keys of its table.

Every check raises one :class:`~planning.errors.ConfigError` naming the key that is
wrong and how to fix it; :mod:`experiments.config_sections` and
:mod:`experiments.config` build on them.  The limits (``MAX_*``) are documented in the README.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Mapping

from planning.errors import ConfigError

#: Upper bounds of the matrix's counts: beyond them a typo would run for days (documented in the README).
MAX_REPETITIONS = 10_000
MAX_REPLICATIONS = 1_000_000
MAX_SEED = 2**63 - 1
#: Planner parameters that are durations and must be positive.
_POSITIVE_PARAMS = ("deadline", "budget")


def check_planner_params(params: Mapping[str, Any], where: str) -> None:
    """Planner parameters: numbers finite (durations positive), text not empty, before any planner sees them."""
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}.{key} = {value} is not a finite number", f"give {key} a finite number")
        if key in _POSITIVE_PARAMS and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{where}.{key} must be a positive number of seconds, got {value!r}",
                              f"set {key} to e.g. 60.0")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{where}.{key} is empty", f"give {key} a value or leave it out")


def bounded_int(table: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = typed_value(table, key, int, where, default)
    if value is not None and value < low:
        raise ConfigError(f"{where} must be at least {low}, got {value}", f"set {key} = {low} or more")
    if value is not None and value > high:
        raise ConfigError(f"{where} must be at most {high:,} (a documented limit), got {value:,}",
                          f"set {key} to at most {high:,}")
    return value


def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {where}{did_you_mean(key, allowed)}",
                              f"use only {', '.join(sorted(allowed))}")


def did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def subtable(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table, got {type(value).__name__}", f"write [{key}] on its own line")
    return value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "a table", list: "a list"}


def typed_value(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where} must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {type(value).__name__} {value!r}",
                          f"write {where.rpartition('.')[2]} as {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value


def positive_float(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where} must be a positive number, got {value!r}", f"set {key} to e.g. 0.01 or 1.0")
    return float(value)


def check_unique(labels: list[str], what: str, fix: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise ConfigError(f"two {what}s are labelled {label!r}", fix)
        seen.add(label)


def resolve_path(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def is_python_spec(spec: str) -> bool:
    file_part, sep, _ = spec.rpartition(":")
    return bool(sep) and file_part.endswith(".py")
