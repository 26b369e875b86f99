"""WfCommons in: realistic synthetic workflows of any size from WfCommons' recipes.

``gen:wfcommons:RECIPE[:key=value,...]`` builds a workflow with the ``wfcommons``
package (an optional extra: ``pip install -e '.[wfcommons]'``; the dev extra has it).
WfChef recipes are fitted on real executions (the WfInstances collection), so a
synthetic Montage of 2,000 tasks has Montage's shape, task kinds, runtimes and file
sizes, not a random graph's::

    gen:wfcommons:montage:tasks=500
    gen:wfcommons:epigenomics:tasks=1000,seed=3,runtime_factor=0.01

Keys: ``tasks`` (upper bound on the task count, default 100; each recipe has a
minimum, the size of its smallest real base graph), ``seed`` (default 0),
``runtime_factor``, ``input_file_size_factor``, ``output_file_size_factor`` (default 1).

Reproducible: WfCommons draws from :mod:`random` and :mod:`numpy.random`; both are
seeded with ``seed`` before ``build_workflow()`` and restored afterwards, so the
same spec gives the same DAG, runtimes and sizes (file names are random UUIDs,
but planlab keeps none of them).  The instance is read with
:func:`planning.sources.wfformat.read_wfformat`, as any WfFormat file.  Its makespan is the
recipe's, not a recording, so ``recorded_makespan_s`` is None.
Cost: importing wfcommons takes seconds, once per process; building grows
with the task count (``benchmarks/bench_extensions.py`` records both).
"""

from __future__ import annotations

import contextlib
import io
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from planning.errors import WorkflowError
from planning.names import did_you_mean
from planning.sources.wfformat import read_wfformat
from planning.workflow import Workflow

PREFIX = "gen:wfcommons"
#: Recipe name in a spec -> class in ``wfcommons.wfchef.recipes``.
RECIPES: dict[str, str] = {
    "blast": "BlastRecipe", "bwa": "BwaRecipe", "cycles": "CyclesRecipe", "epigenomics": "EpigenomicsRecipe",
    "1000genome": "GenomeRecipe", "montage": "MontageRecipe", "rnaseq": "RnaseqRecipe",
    "seismology": "SeismologyRecipe", "soykb": "SoykbRecipe", "srasearch": "SrasearchRecipe",
}
#: Accepted keys and their defaults (and so their types).
DEFAULTS: dict[str, Any] = {"tasks": 100, "seed": 0, "runtime_factor": 1.0, "input_file_size_factor": 1.0,
                            "output_file_size_factor": 1.0}
_EXAMPLE = "gen:wfcommons:montage:tasks=500"


def is_wfcommons_spec(text: str) -> bool:
    """Whether a workflow spec asks WfCommons (``gen:wfcommons`` or ``gen:wfcommons:...``)."""
    return text == PREFIX or text.startswith(PREFIX + ":")


def parse_wfcommons_spec(spec: str) -> Workflow:
    """The workflow ``gen:wfcommons:RECIPE[:key=value,...]`` describes (see the module docstring)."""
    rest = spec[len(PREFIX) + 1:] if spec.startswith(PREFIX + ":") else ""
    recipe, _, params_text = rest.partition(":")
    recipe = recipe.strip().lower()
    if not recipe:
        raise WorkflowError(f"workflow spec {spec!r} names no WfCommons recipe",
                            f"write e.g. {_EXAMPLE}; recipes: {', '.join(RECIPES)}")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in params_text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise WorkflowError(f"workflow spec {spec!r}: {item!r} is not key=value", f"write e.g. {_EXAMPLE}")
        if key not in DEFAULTS:
            raise WorkflowError(f"gen:wfcommons has no parameter {key!r}{did_you_mean(key, DEFAULTS)}",
                                f"valid parameters: {', '.join(f'{k}={v}' for k, v in DEFAULTS.items())}")
        params[key] = _number(key, raw.strip())
    return wfcommons_workflow(recipe, **params)


def wfcommons_workflow(recipe: str, *, tasks: int = 100, seed: int = 0, runtime_factor: float = 1.0,
                       input_file_size_factor: float = 1.0, output_file_size_factor: float = 1.0) -> Workflow:
    """A synthetic workflow of at most ``tasks`` tasks from WfCommons' ``recipe`` (seeded, reproducible)."""
    if recipe not in RECIPES:
        raise WorkflowError(f"unknown WfCommons recipe {recipe!r}{did_you_mean(recipe, RECIPES)}",
                            f"use one of: {', '.join(RECIPES)}")
    for key, value in (("runtime_factor", runtime_factor), ("input_file_size_factor", input_file_size_factor),
                       ("output_file_size_factor", output_file_size_factor)):
        if not value > 0:
            raise WorkflowError(f"gen:wfcommons: {key} must be positive, got {value}", f"write e.g. {key}=0.5")
    generator_cls, recipe_cls = _wfcommons_classes(recipe)
    try:
        recipe_obj = recipe_cls.from_num_tasks(int(tasks), runtime_factor=float(runtime_factor),
                                               input_file_size_factor=float(input_file_size_factor),
                                               output_file_size_factor=float(output_file_size_factor))
        with _seeded(int(seed)), contextlib.redirect_stdout(io.StringIO()):
            instance = generator_cls(recipe_obj).build_workflow()
    except ValueError as exc:   # e.g. fewer tasks than the recipe's smallest base graph
        raise WorkflowError(f"WfCommons cannot build {recipe} with tasks={tasks}: {exc}",
                            "ask for more tasks (each recipe has a minimum, its smallest real workflow)") from None
    name = f"wfcommons-{recipe}-{tasks}-s{seed}"
    with tempfile.TemporaryDirectory(prefix="planlab-wfcommons-") as tmp:
        path = Path(tmp) / f"{name}.json"
        instance.write_json(path)
        workflow = read_wfformat(path)
    synthetic_makespan = workflow.metadata.get("recorded_makespan_s")    # the recipe's, not a recording
    workflow.metadata.update({"source_file": None, "generator": f"{PREFIX}:{recipe}:tasks={tasks},seed={seed}",
                              "recipe": recipe, "seed": int(seed), "recorded_makespan_s": None,
                              "synthetic_makespan_s": synthetic_makespan})
    return workflow


def _wfcommons_classes(recipe: str) -> tuple[type, type]:
    try:
        from wfcommons import WorkflowGenerator
        from wfcommons.wfchef import recipes
    except ImportError:
        raise WorkflowError("gen:wfcommons needs the optional wfcommons package, which is not installed",
                            "pip install -e '.[wfcommons]' (or pip install wfcommons)") from None
    return WorkflowGenerator, getattr(recipes, RECIPES[recipe])


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed ``random`` and ``numpy.random`` (WfCommons draws from both), restoring both afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _number(key: str, raw: str) -> int | float:
    want = type(DEFAULTS[key])
    try:
        value = want(raw)
    except ValueError:
        raise WorkflowError(f"gen:wfcommons: {key}={raw!r} is not {'an integer' if want is int else 'a number'}",
                            f"write e.g. {key}={DEFAULTS[key]}") from None
    if key == "tasks" and value < 1:
        raise WorkflowError(f"gen:wfcommons: tasks must be at least 1, got {value}", f"write e.g. {_EXAMPLE}")
    return value
