"""planlab's vocabulary and library core: workflows, profiles, SLAs, history, cost model, traces.

The vocabulary sits at the top (workflow DAG, topology, profiles, SLA, plan, trace,
protocol, schedule, errors, names); the sub-packages hold what builds on it:
:mod:`planning.sources` (where workflows come from), :mod:`planning.costs` (history,
cost model, estimates) and :mod:`planning.planners` (one module per algorithm).
``planning`` imports nothing else of planlab; the simulator, the executor and the
experiments build on it.

The public names below are imported on first use (PEP 562), not with the package:
``import planning`` (and so every ``planning.errors`` import, the command line's
first) would otherwise load pandas through the cost model and ``scipy.stats``
through the sources, about a second before anything is asked of them.
``from planning import CostModel`` works as before; it imports the cost model then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Where each public name lives: module -> the names it exports through ``planning``.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "planning.costs.cost_model": ("CostModel", "validate_cost_model"),
    "planning.costs.estimates": ("Estimate", "TimeDistribution", "WorkflowEstimates"),
    "planning.costs.history": ("concat_histories", "load_history", "save_history", "validate_history"),
    "planning.errors": ("CatalogError", "ConfigError", "ExecutionError", "HistoryError", "PlanError", "PlanlabError",
                        "SLAError", "WorkflowError"),
    "planning.profiles": ("Catalog", "ResourceProfile", "load_catalog"),
    "planning.sla": ("SLA",),
    "planning.sources.dsl": ("TaskFunction", "TaskResult", "build_workflow", "task"),
    "planning.sources.generator_specs": ("parse_generator_spec",),
    "planning.sources.generators": ("generate", "list_generators", "register_generator"),
    "planning.sources.loading": ("load_workflow",),
    "planning.sources.wfformat": ("read_wfformat",),
    "planning.sources.wfformat_write": ("write_wfformat",),
    "planning.trace": ("Trace", "compare_traces"),
    "planning.tasks": ("Ref", "Task"),
    "planning.workflow": ("Workflow", "run_locally"),
}
_MODULE_OF: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "CostModel", "validate_cost_model", "TaskFunction", "TaskResult", "build_workflow", "task",
    "CatalogError", "ConfigError", "ExecutionError", "HistoryError", "PlanError", "PlanlabError", "SLAError",
    "WorkflowError", "Estimate", "TimeDistribution", "WorkflowEstimates", "generate", "list_generators",
    "parse_generator_spec", "register_generator", "concat_histories", "load_history", "save_history",
    "validate_history", "load_workflow", "Catalog", "ResourceProfile", "load_catalog", "SLA", "Trace",
    "compare_traces", "read_wfformat", "write_wfformat", "Ref", "Task", "Workflow", "run_locally",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then cached in the package)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'planning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's attributes and its lazily imported public names (for completion and ``dir()``)."""
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:   # type checkers and IDEs see the names where they live
    from planning.costs.cost_model import CostModel, validate_cost_model
    from planning.costs.estimates import Estimate, TimeDistribution, WorkflowEstimates
    from planning.costs.history import concat_histories, load_history, save_history, validate_history
    from planning.errors import (CatalogError, ConfigError, ExecutionError, HistoryError, PlanError, PlanlabError,
                                 SLAError, WorkflowError)
    from planning.profiles import Catalog, ResourceProfile, load_catalog
    from planning.sla import SLA
    from planning.sources.dsl import TaskFunction, TaskResult, build_workflow, task
    from planning.sources.generator_specs import parse_generator_spec
    from planning.sources.generators import generate, list_generators, register_generator
    from planning.sources.loading import load_workflow
    from planning.sources.wfformat import read_wfformat
    from planning.sources.wfformat_write import write_wfformat
    from planning.trace import Trace, compare_traces
    from planning.tasks import Ref, Task
    from planning.workflow import Workflow, run_locally
