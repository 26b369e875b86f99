"""planlab's vocabulary and library core: workflows, profiles, SLAs, history, cost model, traces.

The vocabulary sits at the top (workflow DAG, topology, profiles, SLA, plan, trace,
protocol, schedule, errors, names); the sub-packages hold what builds on it:
:mod:`planning.sources` (where workflows come from), :mod:`planning.costs` (history,
cost model, estimates) and :mod:`planning.planners` (one module per algorithm).
``planning`` imports nothing else of planlab; the simulator, the executor and the
experiments build on it.
"""

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
from planning.tasks import Ref, Task
from planning.trace import Trace, compare_traces
from planning.workflow import Workflow, run_locally

__all__ = [
    "CostModel", "validate_cost_model", "TaskFunction", "TaskResult", "build_workflow", "task",
    "CatalogError", "ConfigError", "ExecutionError", "HistoryError", "PlanError", "PlanlabError", "SLAError",
    "WorkflowError", "Estimate", "TimeDistribution", "WorkflowEstimates", "generate", "list_generators",
    "parse_generator_spec", "register_generator", "concat_histories", "load_history", "save_history",
    "validate_history", "load_workflow", "Catalog", "ResourceProfile", "load_catalog", "SLA", "Trace",
    "compare_traces", "read_wfformat", "write_wfformat", "Ref", "Task", "Workflow", "run_locally",
]
