"""Fuzzed inputs of planlab's front doors: WfFormat documents, experiment configs, command lines.

Each case is built from a valid input by one mutation and says whether the
result is *surely invalid* (a non-finite number, a wrong type, a size above a
documented limit...): then planlab must refuse it with exit status 2.  Otherwise
either outcome is fine, but never a traceback, a hang or an internal error.
Used by ``tests/test_fuzz_inputs.py`` (hypothesis, a few dozen examples) and by
``benchmarks/bench_reliability.py`` (1,000 cases through the real ``planlab``
command, each in its own process with a timeout).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "wfformat_document", "config_text", "cli_case", "FUZZ_VALUES", "random_case"]

#: Values a mutation writes, each with whether it is surely invalid where a number belongs.
FUZZ_VALUES: list[tuple[Any, bool]] = [
    (float("nan"), True), (float("inf"), True), (-float("inf"), True), (1e400, True), (None, False),
    ("x.txt", True), (7, False), (-1, False), (0, False), (True, True), ([], False), ({}, True),
    ([1, "a"], True), ("", True), (10**19, False), (2.5, False), ("p٩٥", True),
]


@dataclass(frozen=True)
class Case:
    """One fuzzed input: the command line, files it needs (name -> text), and whether it is surely invalid."""

    argv: tuple[str, ...]
    files: dict[str, str]
    invalid: bool
    label: str


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def wfformat_document(field: str, value: Any) -> str:
    """A 3-task WfFormat 1.5 document with ``field`` of task ``b`` (or of its file) set to ``value``."""
    tasks = [{"id": t, "name": t, "parents": p, "children": c, "inputFiles": i, "outputFiles": o}
             for t, p, c, i, o in (("a", [], ["b"], [], ["a.out"]), ("b", ["a"], ["c"], ["a.out"], ["b.out"]),
                                   ("c", ["b"], [], ["b.out"], []))]
    files = [{"id": "a.out", "sizeInBytes": 100}, {"id": "b.out", "sizeInBytes": 200}]
    execution = [{"id": t, "runtimeInSeconds": 1.5, "coreCount": 1, "memoryInBytes": 2**20} for t in "abc"]
    doc = {"name": "fuzz", "schemaVersion": "1.5",
           "workflow": {"specification": {"tasks": tasks, "files": files},
                        "execution": {"makespanInSeconds": 5.0, "executedAt": "2024", "tasks": execution}}}
    if field in ("runtimeInSeconds", "coreCount", "memoryInBytes"):
        execution[1][field] = value
    elif field == "sizeInBytes":
        files[1][field] = value
    else:
        tasks[1][field] = value
    return _json(doc)


#: WfFormat fields a mutation targets, and whether a surely-invalid value there must be refused.
WFFORMAT_FIELDS = ("runtimeInSeconds", "coreCount", "memoryInBytes", "sizeInBytes", "parents", "children",
                   "inputFiles", "outputFiles")

GOOD_CONFIG = {"name": "fuzz", "phases": ["plan"], "slas": ["mean"], "repetitions": 1, "seed": 0,
               "catalog": "local", "workflow": [{"spec": "gen:chain:length=3"}], "planner": [{"name": "heft"}]}
#: Config keys a mutation targets.
CONFIG_KEYS = ("repetitions", "seed", "slas", "catalog", "name", "phases", "workflow.scale", "simulate.replications",
               "simulate.processes", "planner.params.deadline")


def _toml_value(value: Any) -> str | None:
    if value is None:
        return None    # TOML has no null: the key is left out
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 2**63 else None
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        parts = [_toml_value(v) for v in value]
        return None if None in parts or len({type(v) for v in value}) > 1 else "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        return "{}" if not value else None
    return None


def config_text(key: str, value: Any) -> str | None:
    """A config TOML with ``key`` set to ``value`` (None when TOML cannot express the value)."""
    shown = _toml_value(value)
    if shown is None:
        return None
    top = {k: v for k, v in GOOD_CONFIG.items() if k not in ("workflow", "planner")}
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items() if k != key]
    if "." not in key:
        lines.append(f"{key} = {shown}")
    lines += ["[[workflow]]", 'spec = "gen:chain:length=3"']
    if key == "workflow.scale":
        lines.append(f"scale = {shown}")
    lines += ["[[planner]]", 'name = "heft"' if key != "planner.params.deadline" else 'name = "uniform"']
    if key == "planner.params.deadline":
        lines.append(f"params = {{ deadline = {shown} }}")
    if key.startswith("simulate."):
        lines += ["[simulate]", f"{key.split('.')[1]} = {shown}"]
    return "\n".join(lines) + "\n"


def _surely_invalid_config(key: str, value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return True
    if key in ("repetitions", "seed", "simulate.replications", "simulate.processes"):
        return (isinstance(value, bool) or not isinstance(value, int) or value < (0 if "seed" in key else 1)
                or value > 10**18 or (key == "simulate.processes" and value > 1024))
    if key == "slas":
        return not isinstance(value, list) or not value or any(not isinstance(v, str) for v in value)
    if key in ("catalog", "name"):
        return not isinstance(value, str) or not value.strip()
    if key == "phases":
        return True     # no fuzz value is a valid list of phases with "plan"
    if key in ("workflow.scale", "planner.params.deadline"):
        return isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
    return False


#: Command-line options a mutation targets, with the command that has them.
CLI_OPTIONS = (("plan", "--deadline"), ("simulate", "--replications"), ("simulate", "--processes"),
               ("simulate", "--seed"), ("plan", "--sla"), ("plan", "--catalog"), ("plan", "--out"),
               ("plan", "GEN:chain:length"), ("plan", "GEN:fork_join:width"), ("plan", "GEN:random_layered:seed"))


def cli_case(command: str, option: str, value: Any, workdir: str) -> Case:
    """A command line with ``option`` set to ``value`` (a generator parameter for ``GEN:`` options)."""
    text = "" if value is None else (repr(value) if isinstance(value, float) else str(value))
    spec = "gen:chain:length=3"
    argv = [command]
    if option.startswith("GEN:"):
        _, gen, param = option.split(":")
        spec = f"gen:{gen}:{param}={text}"
    argv += [spec, "--planner", "uniform", "--profile", "small"]
    if command == "simulate":
        argv += ["--replications", "3"] if option != "--replications" else []
    if not option.startswith("GEN:"):
        argv += [option, text]
    invalid = _surely_invalid_cli(option, value, text)
    if option == "--out" and value is not None:
        argv[-1] = f"{workdir}/{text}" if text not in ("", "/") else text
    return Case(tuple(argv), {}, invalid, f"cli {command} {option}={text!r}")


def _surely_invalid_cli(option: str, value: Any, text: str) -> bool:
    if option == "--out":
        return text.strip() == ""
    if option in ("--sla", "--catalog"):
        return text.strip() == "" or not text.isascii() or text in ("True", "7", "-1", "0", "[]", "{}")
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float)):
        return True   # every numeric option and generator parameter needs a number
    if not math.isfinite(value):
        return True
    if option == "--deadline":
        return value <= 0
    if option == "--replications":
        return value < 0 or value > 10**6 or not float(value).is_integer()
    if option == "--processes":
        return value < 1 or value > 1024 or not float(value).is_integer()
    if option == "--seed" or option.endswith(":seed"):
        return value < 0 or not float(value).is_integer()
    if option.endswith(":length") or option.endswith(":width"):
        return value < 1 or value > 10**6 or not float(value).is_integer()
    return False


def random_case(rng: random.Random, workdir: str) -> Case:
    """One of the three kinds of fuzzed input, chosen and mutated by ``rng``."""
    value, value_invalid = rng.choice(FUZZ_VALUES)
    kind = rng.choice(("wfformat", "config", "cli"))
    if kind == "wfformat":
        field = rng.choice(WFFORMAT_FIELDS)
        numeric = field in ("runtimeInSeconds", "coreCount", "memoryInBytes", "sizeInBytes")
        invalid = _surely_invalid_wf(field, value, numeric)
        return Case(("plan", "{dir}/w.json", "--planner", "uniform", "--profile", "small"),
                    {"w.json": wfformat_document(field, value)}, invalid, f"wfformat {field}={value!r}")
    if kind == "config":
        key = rng.choice(CONFIG_KEYS)
        text = config_text(key, value)
        if text is None:
            return random_case(rng, workdir)
        return Case(("run", "{dir}/c.toml", "--out", "{dir}/out"), {"c.toml": text},
                    _surely_invalid_config(key, value), f"config {key}={value!r}")
    command, option = rng.choice(CLI_OPTIONS)
    return cli_case(command, option, value, workdir)


def _surely_invalid_wf(field: str, value: Any, numeric: bool) -> bool:
    if numeric:
        if field == "runtimeInSeconds" and value is None:
            return True
        return value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value < 0 or value > 2**60)
    if value is None:
        return False
    return not isinstance(value, list) or any(not isinstance(v, (str, int)) for v in value)
