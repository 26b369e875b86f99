"""The optimizations: named protocol subclasses and plan annotations, each written once for every engine.

A config selects them per planner (``[[planner]] optimizations = ["retention",
"clustering"]``, or ``protocol = "retention"`` for a protocol one alone), the CLI with
``--optimizations retention,clustering``.  Two sorts:

* **protocol optimizations** (:data:`PROTOCOL_OPTIMIZATIONS`): a
  :class:`~planning.protocol.WorkerProtocol` subclass overriding hooks, so the
  planner's schedule, the simulator and the executor all follow it -
  ``retention`` (:mod:`.retention`), ``preload`` (:mod:`.preload`), ``delayed_io``
  (:mod:`.delayed_io`: the outputs it uploads lazily, those that hold their worker on
  the plan's critical path, are derived from its schedule and given to the class,
  :func:`optimize`);
* **plan optimizations** (:data:`PLAN_OPTIMIZATIONS`): a transform of a static
  plan's assignment, re-timed by the planner's schedule; the engines run the new
  assignment as any other - ``clustering`` (:mod:`.clustering`).

:func:`optimize` applies a list of them to a plan: the plan transforms in order,
then the protocol subclasses composed into one class (:func:`compose`), under
which the plan is re-timed, so its planned times are the optimized ones.
Each module's docstring says what the optimization assumes and what it costs.
"""

from __future__ import annotations

import dataclasses
import math

from typing import Any, Callable, Iterable

from planning.errors import PlanError
from planning.names import did_you_mean
from planning.protocol.base import WorkerProtocol
from planning.protocol.optimizations.clustering import cluster_plan, moved_tasks
from planning.protocol.optimizations.delayed_io import (DelayedIO, critical_outputs, delayed_io_protocol,
                                                        lazy_outputs, yielding_workers)
from planning.protocol.optimizations.preload import Preload, preload_memory
from planning.protocol.optimizations.prewarm import prewarm_plan
from planning.protocol.optimizations.retention import OutputRetention, fetch_readers, server_memory
from planning.workflow import Workflow

#: Protocol subclasses by name (composable: each overrides its own hooks and defers to ``super()``).
PROTOCOL_OPTIMIZATIONS: dict[str, type[WorkerProtocol]] = {"retention": OutputRetention, "preload": Preload,
                                                             "delayed_io": DelayedIO}
#: Plan transforms by name: ``transform(plan, workflow, cost_model) -> plan``.
PLAN_OPTIMIZATIONS: dict[str, Callable[[Any, Workflow, Any], Any]] = {"clustering": cluster_plan,
                                                                       "prewarm": prewarm_plan}


def optimization_names() -> list[str]:
    """Every optimization a config or the CLI may name."""
    return sorted({*PROTOCOL_OPTIMIZATIONS, *PLAN_OPTIMIZATIONS})


def check_optimizations(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, each known and named once; else one PlanError naming the problem and the fix."""
    names = tuple(names)
    known = optimization_names()
    for name in names:
        if name not in known:
            raise PlanError(f"unknown optimization {name!r}{did_you_mean(name, known)}",
                            f"use some of: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise PlanError(f"optimizations {list(names)} name one twice", "name each optimization once")
    return names


def compose(names: Iterable[str], base: type[WorkerProtocol] = WorkerProtocol) -> type[WorkerProtocol]:
    """One protocol class with the named protocol optimizations over ``base`` (``base`` when none is named).

    A class composed here is not importable by name: the executor ships it by value
    (cloudpickle); a Monte Carlo over several processes needs an importable class.
    """
    chosen = [PROTOCOL_OPTIMIZATIONS[n] for n in check_optimizations(names) if n in PROTOCOL_OPTIMIZATIONS]
    if not chosen:
        return base
    if len(chosen) == 1 and base is WorkerProtocol:
        return chosen[0]
    bases = tuple(chosen) + ((base,) if base is not WorkerProtocol and not any(issubclass(c, base) for c in chosen)
                             else ())
    return type("+".join(c.__name__ for c in bases), bases, {})


def optimize(plan: Any, workflow: Workflow, cost_model: Any, names: Iterable[str],
             base: type[WorkerProtocol] = WorkerProtocol,
             host_cores: float = math.inf) -> tuple[Any, type[WorkerProtocol]]:
    """``plan`` with the named optimizations: (the transformed and re-timed plan, the protocol class to run it with).

    ``host_cores``: the cores the run's workers share (finite: one host, as the executor's), which pre-warm
    weighs its start-ups against (:func:`prewarm_plan`); infinite: a machine per worker.

    The caller's plan is never changed: with nothing to transform, the plan returned is a copy of it
    (the same timing) that carries the annotation.
    """
    names = check_optimizations(names)
    given = plan
    for name, transform in PLAN_OPTIMIZATIONS.items():   # in their own order: pre-warm times the final assignment
        if name in names:
            plan = (transform(plan, workflow, cost_model, host_cores) if transform is prewarm_plan
                    else transform(plan, workflow, cost_model))
    protocol = compose(names, base)
    if protocol is not WorkerProtocol:
        if plan.dynamic and not protocol.dynamic:
            raise PlanError(f"optimization(s) {', '.join(n for n in names if n in PROTOCOL_OPTIMIZATIONS)} need a "
                            "static plan; a dynamic (wukong) plan decides its workers at run time",
                            "use a static planner (heft, critical_path, ...) or drop them")
        if issubclass(protocol, DelayedIO):   # lazy: the uploads that hold their worker on the critical path
            lazy, plan = lazy_outputs(plan, workflow, cost_model, protocol)
            eager = set(workflow.topology().ids) - lazy
            decided = delayed_io_protocol(protocol, eager)
            # the workers whose lazy uploads have room to yield the CPU (no change in the plan's timing)
            protocol = delayed_io_protocol(protocol, eager, yielding_workers(plan, workflow,
                                                                             decided.for_plan(workflow, plan)))
        else:
            plan = plan.retimed(workflow, cost_model, protocol)
    if plan is given:
        plan = dataclasses.replace(plan)
    plan.annotations = {**plan.annotations, "optimizations": list(names)}
    return plan, protocol


__all__ = ["PROTOCOL_OPTIMIZATIONS", "PLAN_OPTIMIZATIONS", "optimization_names", "check_optimizations", "compose",
           "optimize", "OutputRetention", "Preload", "DelayedIO", "critical_outputs", "lazy_outputs",
           "delayed_io_protocol", "preload_memory", "cluster_plan", "prewarm_plan", "moved_tasks", "fetch_readers", "server_memory"]
