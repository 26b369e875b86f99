"""A static protocol's compiled decisions are exactly what its hooks decide, and the simulator obeys them."""

from __future__ import annotations

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.planners import PLANNERS, get_planner
from planning.profiles import load_catalog
from planning.protocol import WorkerProtocol
from planning.protocol.tables import hook_tables
from planning.sources.generators import generate
from simulator.simulate import compile_plan

MODEL = CostModel()
CATALOG = load_catalog("local")
PARAMS = {"uniform": {"profile": "medium"}, "wukong": {"profile": "medium"}, "cost-deadline": {"deadline": 1e9}}


class SameAsBase(WorkerProtocol):
    """Overrides a hook without changing it: its tables are built by asking the hooks task by task."""

    def handle_output(self, task_id, worker):
        return super().handle_output(task_id, worker)


@pytest.mark.parametrize("generator,params", [("random_layered", {"tasks": 120, "seed": 2}), ("gemm", {"blocks": 2}),
                                              ("fork_join", {"width": 4, "depth": 2})])
@pytest.mark.parametrize("planner", sorted(set(PLANNERS) - {"recorded"}))
def test_static_tables_match_the_hooks(planner: str, generator: str, params: dict) -> None:
    workflow = generate(generator, **params)
    try:
        plan = get_planner(planner, **PARAMS.get(planner, {})).plan(workflow, CATALOG, MODEL, "p95")
    except PlanError as exc:
        pytest.skip(str(exc))
    model = compile_plan(workflow, plan, MODEL)
    tables = model.tables
    if plan.dynamic:
        assert tables is None
        return
    proto = model.protocol
    asked = hook_tables(proto)     # the same protocol's hooks, asked task by task
    for name in ("worker", "profile", "fetch", "fetch_sized", "local", "fetched", "store", "out_bytes", "downstream", "initial",
                 "sequence", "worker_profile", "other_profile"):
        assert getattr(tables, name) == getattr(asked, name), name
    for i, t in enumerate(model.ids):
        w = proto.worker_of[t]
        assert tables.worker[i] == w
        ran_here = {p for p in proto.parents(t) if proto.worker_of[p] == w}
        assert tables.fetch[i] == [f.nbytes for f in proto.handle_inputs(t, w, ran_here).fetch]
        out = proto.handle_output(t, w)
        assert (tables.store[i], tables.out_bytes[i]) == (out.store, out.nbytes)
        decision = proto.handle_downstream(t, w, proto.children(t))
        here = [model.ids[j] for j, h, _, _ in tables.downstream[i] if h]
        away = [(cw, model.ids[j], s) for j, h, cw, s in tables.downstream[i] if not h]
        assert here == list(decision.run_here)
        assert away == [(inv.worker, inv.task, inv.start) for inv in decision.invocations]
    assert tables.initial == proto.initial_invocations()
    assert tables.sequence == {w: [model.index[t] for t in ts] for w, ts in proto.sequence.items()}


def test_a_protocol_subclass_compiles_by_asking_the_hooks_it_overrides() -> None:
    class Custom(WorkerProtocol):
        pass

    workflow = generate("chain", length=3)
    plan = get_planner("heft").plan(workflow, CATALOG, MODEL, "p95")
    assert Custom.overridden_hooks() == () and SameAsBase.overridden_hooks() == ("handle_output",)
    custom = compile_plan(workflow, plan, MODEL, protocol=Custom.for_plan(workflow, plan)).tables
    default = compile_plan(workflow, plan, MODEL).tables
    same = compile_plan(workflow, plan, MODEL, protocol=SameAsBase.for_plan(workflow, plan)).tables
    assert custom is not None and default is not None and same is not None
    assert custom.store == default.store == same.store and custom.downstream == default.downstream == same.downstream


def test_the_trace_is_what_its_schema_coercion_gives() -> None:
    # simulate() skips Trace's column-by-column coercion only when its frames already satisfy the schema
    from planning.trace import Trace
    from simulator import simulate
    from simulator.simulate import _trace

    workflow = generate("random_layered", tasks=60, seed=4)
    plan = get_planner("heft").plan(workflow, CATALOG, MODEL, "p95")
    trace = simulate(workflow, plan, MODEL)
    coerced = Trace(trace.tasks, trace.workers, trace.makespan_s, trace.meta)
    for mine, ref in ((trace.tasks, coerced.tasks), (trace.workers, coerced.workers)):
        assert mine.equals(ref) and list(mine.columns) == list(ref.columns)
        assert list(mine.dtypes) == list(ref.dtypes)
    bad = trace.tasks.assign(attempt=trace.tasks["attempt"].astype(float))
    assert _trace(bad, trace.workers, 1.0, {}).tasks["attempt"].dtype == "int64"   # fell back to coercing


@pytest.mark.parametrize("planner, params", [("uniform", {"profile": "medium"}), ("wukong", {})])
def test_a_finished_run_is_freed_without_the_cycle_collector(planner: str, params: dict) -> None:
    # simulate() pauses the collector; a run left in a reference cycle (e.g. through the waiters of
    # finished transfers) would make the first collection afterwards walk all of its objects
    import gc
    import weakref

    from simulator import Platform
    from simulator.engine import Run

    model, catalog = CostModel(), load_catalog("local")
    workflow = generate("random_layered", tasks=300, seed=2)
    plan = get_planner(planner, **params).plan(workflow, catalog, model, "p95")
    compiled = compile_plan(workflow, plan, model)
    enabled = gc.isenabled()
    gc.disable()
    try:
        run = Run(compiled, Platform.from_cost_model(model, "p95"))
        assert run.link is not None          # the default platform shares storage bandwidth
        result = run.run()
        freed = weakref.ref(run)
        del run
        assert freed() is None
        assert result.makespan_s > 0
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("generator,params", [("random_layered", {"tasks": 150, "seed": 3}), ("gemm", {"blocks": 2}),
                                              ("five_branches", {})])
@pytest.mark.parametrize("planner", ["uniform", "heft", "critical-path"])
@pytest.mark.parametrize("sample", [False, True])
def test_a_static_run_gives_the_trace_the_hooks_give(planner: str, generator: str, params: dict, sample: bool) -> None:
    # the tables compiled with array operations and the tables compiled by asking the hooks give the
    # same trace, bit for bit
    import pandas as pd

    from simulator import Platform, simulate

    workflow = generate(generator, **params)
    plan = get_planner(planner, **PARAMS.get(planner, {})).plan(workflow, CATALOG, MODEL, "p95")
    platform = Platform.from_cost_model(MODEL, "p95", keep_alive_s=30.0)   # a pool: warm and cold starts
    fast = simulate(workflow, plan, MODEL, platform=platform, sample=sample, seed=7)
    hooks = simulate(workflow, plan, MODEL, platform=platform, sample=sample, seed=7,
                     protocol=SameAsBase.for_plan(workflow, plan))
    assert fast.makespan_s == hooks.makespan_s
    pd.testing.assert_frame_equal(fast.tasks, hooks.tasks, check_exact=True)
    pd.testing.assert_frame_equal(fast.workers, hooks.workers, check_exact=True)
    assert fast.tasks["cold_start"].any()
    if planner == "uniform" and generator == "random_layered":   # (later workers find idle processes)
        assert not fast.workers["cold_start"].all()
