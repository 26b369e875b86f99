"""The optimizations, each with a hand-computed answer in the plan and the simulation, and a real run doing what it says.

With every optimization off, results are today's: the base protocol's tests and the
trace-equality tests elsewhere keep passing unchanged.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from executor import Executor, ExecutorSettings
from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.plan import Plan
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import (OutputRetention, check_optimizations, compose, delayed_io_protocol,
                                             moved_tasks, optimize, server_memory)
from planning.tasks import Task
from planning.trace import Trace
from planning.sources.generators import generate
from planning.workflow import Workflow
from simulator import simulate

MB = 1_000_000
MODEL = CostModel()
CATALOG = load_catalog("local")


def replay_workflow(name: str, edges: list[tuple[str, str]], runtime_s: float = 0.05, nbytes: int = MB,
                    sizes: dict[str, int] | None = None) -> Workflow:
    """Replay tasks (real CPU for ``runtime_s``, ``nbytes`` of output) over ``edges``."""
    wf = Workflow(name)
    ids = list(dict.fromkeys(t for e in edges for t in e))
    for t in ids:
        wf.add_task(Task(t, "step", runtime_s=runtime_s, output_bytes=(sizes or {}).get(t, nbytes)))
    for p, c in edges:
        wf.add_edge(p, c, (sizes or {}).get(p, nbytes))
    wf.validate()
    return wf


def assigned(workflow: Workflow, worker_of: dict[str, str], profile: str = "small") -> Plan:
    estimates = MODEL.estimate_workflow(workflow, CATALOG, "mean")
    return Plan.from_assignment(workflow, CATALOG, estimates, MODEL, "mean", worker_of,
                                {w: profile for w in worker_of.values()}, planner="assigned")


@pytest.fixture(scope="module")
def ex():
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0, keep_keys=True)) as executor:
        yield executor


def out_keys(executor: Executor, result) -> set[str]:
    """The outputs still on the server after a run whose keys were kept."""
    prefix = f"pl:{{{result.meta['run_id']}}}:out:"
    return {k.decode()[len(prefix):] for k in executor.client.scan_iter(match=prefix + "*")}


# ------------------------------------------------------------------ names
def test_optimization_names_are_checked_with_a_fix() -> None:
    assert check_optimizations(["retention", "clustering"]) == ("retention", "clustering")
    with pytest.raises(PlanError, match="did you mean 'retention'"):
        check_optimizations(["retension"])
    with pytest.raises(PlanError, match="twice"):
        check_optimizations(["retention", "retention"])
    assert compose([]) is WorkerProtocol and compose(["clustering"]) is WorkerProtocol
    assert compose(["retention"]) is OutputRetention


# ------------------------------------------------------------------ per-task output retention
ALTERNATING = replay_workflow("alternating", [("a", "b"), ("b", "c"), ("c", "d")])
ON_TWO = {"a": "w0", "b": "w1", "c": "w0", "d": "w1"}


def test_retention_bounds_the_servers_memory_in_the_plan_and_the_simulation() -> None:
    # a -> b -> c -> d alternating between two workers: every output is stored (1 MB each).
    # Kept, they add up to 4 MB; with retention each reader's commit deletes its input as it
    # stores its output, so the server holds one output at a time: 1 MB.
    plan = assigned(ALTERNATING, ON_TWO)
    retained, cls = optimize(plan, ALTERNATING, MODEL, ["retention"])
    assert cls is OutputRetention and retained.annotations["optimizations"] == ["retention"]
    assert retained.makespan_s == plan.makespan_s                       # no timing changes
    base, mine = WorkerProtocol.for_plan(ALTERNATING, plan), cls.for_plan(ALTERNATING, retained)
    assert [mine.stored_readers(t) for t in "abcd"] == [("b",), ("c",), ("d",), ()]   # the sink stays for the client
    assert [base.stored_readers(t) for t in "abcd"] == [(), (), (), ()]
    assert server_memory(Trace.from_plan(plan).tasks, base)["peak_bytes"] == 4 * MB
    assert server_memory(Trace.from_plan(retained).tasks, mine)["peak_bytes"] == 1 * MB
    simulated = {name: simulate(ALTERNATING, plan, MODEL, protocol=p) for name, p in (("base", base), ("r", mine))}
    assert simulated["base"].makespan_s == simulated["r"].makespan_s
    assert server_memory(simulated["base"].tasks, base)["peak_bytes"] == 4 * MB
    assert server_memory(simulated["r"].tasks, mine)["peak_bytes"] == 1 * MB


def test_retention_ships_its_readers_to_the_workers() -> None:
    # The executor copies the protocol and pickles it into the run's specification before the run starts.
    # A worker used to compile the whole plan's tables on its first fetching task's commit to name the
    # readers (issue 17: 1.4-70 ms per worker on the run's path): they now travel with the protocol.
    plan, _ = optimize(assigned(ALTERNATING, ON_TWO), ALTERNATING, MODEL, ["retention"])
    shipped = pickle.loads(pickle.dumps(copy.copy(OutputRetention.for_plan(ALTERNATING, plan))))
    assert shipped._tables is None
    assert [shipped.stored_readers(t) for t in "abcd"] == [("b",), ("c",), ("d",), ()]
    assert shipped._tables is None                   # answered from what was shipped: nothing compiled


def test_pre_load_ships_its_tasks_to_the_workers() -> None:
    # as retention's readers (above): a worker asking which tasks pre-load compiled the plan's tables on its path
    from planning.protocol.optimizations import compose

    wf = replay_workflow("big", [("a", "b"), ("b", "c")], nbytes=8 << 20)
    plan, _ = optimize(assigned(wf, {"a": "w0", "b": "w1", "c": "w0"}), wf, MODEL, ["preload", "retention"])
    protocol = compose(["preload", "retention"]).for_plan(wf, plan)
    expected = [protocol.preloads_inputs(t) for t in "abc"]
    import cloudpickle   # a composed class is not importable by name: the executor ships it by value

    shipped = pickle.loads(cloudpickle.dumps(copy.copy(compose(["preload", "retention"]).for_plan(wf, plan))))
    assert shipped._tables is None
    assert [shipped.preloads_inputs(t) for t in "abc"] == expected and any(expected)
    assert shipped.stored_readers("a") == protocol.stored_readers("a")
    assert shipped._tables is None                   # answered from what was shipped: nothing compiled


def test_retention_counts_a_fan_out_readers() -> None:
    # r's output is fetched by x and y (other workers): both reads count, the second deletes it
    wf = replay_workflow("fan", [("r", "x"), ("r", "y"), ("x", "s"), ("y", "s")])
    proto = OutputRetention.for_plan(wf, assigned(wf, {"r": "w0", "x": "w1", "y": "w2", "s": "w0"}))
    assert {t: proto.stored_readers(t) for t in "rxys"} == {"r": ("x", "y"), "x": ("s",), "y": ("s",), "s": ()}


def test_retention_keeps_what_a_re_run_may_need() -> None:
    # x fetches r, and x2 reads x's output from w1's memory: were w1 to die after x committed,
    # its re-run would compute x again from r - so r stays; so does q, read locally by q2 on w0
    wf = replay_workflow("local", [("q", "q2"), ("q", "r"), ("r", "x"), ("x", "x2")])
    proto = OutputRetention.for_plan(wf, assigned(wf, {"q": "w0", "q2": "w0", "r": "w2", "x": "w1", "x2": "w1"}))
    assert proto.stored_readers("r") == () and proto.stored_readers("q") == ()
    assert proto.stored_readers("x") == ()           # read locally only: never stored


def test_retention_deletes_each_output_after_its_last_real_reader(ex) -> None:
    plan = assigned(ALTERNATING, ON_TWO)
    runs = {name: ex.run(ALTERNATING, plan, protocol=cls.for_plan(ALTERNATING, plan))
            for name, cls in (("base", WorkerProtocol), ("retention", OutputRetention))}
    assert runs["base"].results == runs["retention"].results
    assert out_keys(ex, runs["base"]) == {"a", "b", "c", "d"}
    assert out_keys(ex, runs["retention"]) == {"d"}                       # only the sink's result is left
    mine = OutputRetention.for_plan(ALTERNATING, plan)
    assert server_memory(runs["retention"].trace.tasks, mine)["peak_bytes"] <= 2 * MB
    base = WorkerProtocol.for_plan(ALTERNATING, plan)
    assert server_memory(runs["base"].trace.tasks, base)["peak_bytes"] >= 4 * MB


def test_a_commit_sets_aside_what_its_reads_release_and_the_worker_frees_it() -> None:
    from executor.worker_data import released_keys

    # two release ops ('D', out-key, reads-hash, parent, readers): their set-aside names, in order
    release = ["D", "pl:{r}:out:a", "pl:{r}:reads", "a", 1, "D", "pl:{r}:out:b", "pl:{r}:reads", "b", 2]
    assert released_keys(release) == ["pl:{r}:out:a:released", "pl:{r}:out:b:released"]
    assert released_keys([]) == []
    # small inputs are deleted in the commit ('X'): nothing set aside, no free after it
    assert released_keys(["X", "pl:{r}:out:c", "pl:{r}:reads", "c", 1]) == []


def test_only_a_large_input_is_set_aside_a_small_one_is_deleted_in_the_commit() -> None:
    from executor.worker_data import SET_ASIDE_BYTES, release_op

    assert SET_ASIDE_BYTES == 1 << 20
    assert release_op(SET_ASIDE_BYTES) == "D" and release_op(32 * MB) == "D"
    assert release_op(SET_ASIDE_BYTES - 1) == "X" and release_op(131_758) == "X" and release_op(0.0) == "X"


def test_retention_of_small_outputs_leaves_only_the_sinks_result(ex) -> None:
    # 100 kB outputs: deleted inside their last reader's commit, nothing set aside, nothing for a sweep to find
    wf = replay_workflow("small", [("a", "b"), ("b", "c"), ("c", "d")], nbytes=100_000)
    plan = assigned(wf, ON_TWO)
    opt, cls = optimize(plan, wf, MODEL, ["retention"])
    no_sweep = type("NoSweep", (cls,), {"removes_leftovers": lambda self: False})
    real = ex.run(wf, opt, protocol=no_sweep.for_plan(wf, opt))
    assert out_keys(ex, real) == {"d"}


def every_lazy(plan: Plan, wf: Workflow, names: list[str]) -> tuple[Plan, type[WorkerProtocol]]:
    """``plan`` under ``names`` with every output of 4 MiB or more uploaded lazily (``optimize`` makes lazy only
    the uploads that hold their worker on the critical path; these tests are about the background commit)."""
    cls = delayed_io_protocol(compose(names), ())
    return plan.retimed(wf, MODEL, cls), cls


def test_retention_leaves_nothing_set_aside_after_eager_and_background_commits(ex) -> None:
    # 8 MB outputs (above delayed I/O's 4 MiB floor): with delayed_io the uploads and their commits run in the
    # background ('X': deleted in place), without it eagerly ('D': set aside, freed by the worker after the commit)
    wf = replay_workflow("released", [("a", "b"), ("b", "c"), ("c", "d")], nbytes=8 * MB)
    plan = assigned(wf, ON_TWO)
    # (the sink's sweep of leftovers off, so what frees them is the commit or its worker, nothing at the end)
    for names in (["retention"], ["delayed_io", "retention"]):
        opt, cls = every_lazy(plan, wf, names) if "delayed_io" in names else optimize(plan, wf, MODEL, names)
        no_sweep = type("NoSweep", (cls,), {"removes_leftovers": lambda self: False})
        real = ex.run(wf, opt, protocol=no_sweep.for_plan(wf, opt))
        assert out_keys(ex, real) == {"d"}, names     # no "a:released" &c.: every read output freed


def test_a_background_commit_deletes_a_large_read_after_a_small_one_in_place(ex) -> None:
    # c reads a small input (100 kB: 'X', deleted in its commit) and then a large one (8 MB: 'D', set aside
    # when committed eagerly); committed in the background (delayed I/O), no worker frees anything after it,
    # so every read at the commit's head must be deleted in place - the large one after the small one too.
    # (c, its worker's only task, commits lazily as every_lazy decides; s and b have no reader on their own
    # worker, so retention may remove them)
    ys = [f"y{i}" for i in range(1, 11)]
    wf = replay_workflow("mixed", [("s", "c"), ("b", "c"), ("c", "d")] + list(zip(ys, ys[1:] + ["d"])),
                         nbytes=8 * MB, sizes={"s": 100_000, **{y: 1000 for y in ys}})
    plan = assigned(wf, {"s": "w2", "b": "w2", "c": "w0", "d": "w1", **{y: "w1" for y in ys}})
    opt, cls = every_lazy(plan, wf, ["delayed_io", "retention"])
    protocol = cls.for_plan(wf, opt)
    assert protocol.lazy_upload("c", "w0") and set(protocol.stored_readers("s")) == {"c"} == set(
        protocol.stored_readers("b"))
    no_sweep = type("NoSweep", (cls,), {"removes_leftovers": lambda self: False})
    real = ex.run(wf, opt, protocol=no_sweep.for_plan(wf, opt))
    assert out_keys(ex, real) == {"d"}                          # no "b:released" left behind


def test_retention_needs_a_static_plan() -> None:
    plan = assigned(ALTERNATING, ON_TWO)
    plan.dynamic = True
    with pytest.raises(PlanError, match="static plan"):
        optimize(plan, ALTERNATING, MODEL, ["retention"])


def test_no_optimization_leaves_the_callers_plan_alone() -> None:
    plan = assigned(ALTERNATING, ON_TWO)
    before = dict(plan.annotations)
    same, protocol = optimize(plan, ALTERNATING, MODEL, [])
    assert protocol is WorkerProtocol and same is not plan
    assert plan.annotations == before and same.annotations == {**before, "optimizations": []}
    assert same.makespan_s == plan.makespan_s and same.cost == plan.cost


# ------------------------------------------------------------------ task clustering
FAN_OUT = replay_workflow("fan-out", [("r", f"x{i}") for i in range(4)] + [(f"x{i}", "s") for i in range(4)],
                          runtime_s=0.01, nbytes=1000)
SPREAD = {"r": "w0", "s": "w0", **{f"x{i}": f"w{i + 1}" for i in range(4)}}


def test_clustering_runs_a_fan_out_of_small_tasks_on_its_parents_worker() -> None:
    # Four 10 ms children, each on a worker of its own: each pays a cold start (0.25 s) and a
    # fetch, more than the four of them take in series on the parent's worker.  Clustered, the
    # plan is the one-worker plan, timed the same.
    plan = assigned(FAN_OUT, SPREAD)
    clustered, cls = optimize(plan, FAN_OUT, MODEL, ["clustering"])
    assert cls is WorkerProtocol
    assert set(clustered.worker_of.values()) == {"w0"}
    assert moved_tasks(clustered) == {f"x{i}": "w0" for i in range(4)}
    one_worker = assigned(FAN_OUT, {t: "w0" for t in FAN_OUT.task_ids})
    assert clustered.makespan_s == pytest.approx(one_worker.makespan_s, rel=1e-12)
    assert clustered.makespan_s < plan.makespan_s
    assert simulate(FAN_OUT, clustered, MODEL).makespan_s < simulate(FAN_OUT, plan, MODEL).makespan_s


def test_clustering_runs_the_parents_of_a_fan_in_with_large_outputs_on_its_worker() -> None:
    # p1, p2 compute 50 ms and write 200 MB each (a 1 s download): the fan-in's worker runs them
    wf = replay_workflow("fan-in", [("p1", "c"), ("p2", "c")], runtime_s=0.05,
                         sizes={"p1": 200 * MB, "p2": 200 * MB, "c": 1000})
    plan = assigned(wf, {"p1": "w1", "p2": "w2", "c": "w0"})
    clustered, _ = optimize(plan, wf, MODEL, ["clustering"])
    assert moved_tasks(clustered) == {"p1": "w0", "p2": "w0"}
    assert not clustered.tasks.loc[["p1", "p2"], "stored"].any()           # nothing goes through storage
    assert clustered.makespan_s < plan.makespan_s - 1.0


def test_clustering_keeps_a_plan_it_cannot_improve() -> None:
    wf = replay_workflow("fan-out-long", [("r", "x0"), ("r", "x1")], runtime_s=2.0, nbytes=1000)
    plan = assigned(wf, {"r": "w0", "x0": "w1", "x1": "w2"})
    clustered, _ = optimize(plan, wf, MODEL, ["clustering"])
    assert moved_tasks(clustered) == {} and clustered.worker_of == plan.worker_of


def test_clustered_tasks_share_a_worker_in_the_real_run(ex) -> None:
    plan = assigned(FAN_OUT, SPREAD)
    clustered, _ = optimize(plan, FAN_OUT, MODEL, ["clustering"])
    base, real = ex.run(FAN_OUT, plan), ex.run(FAN_OUT, clustered)
    assert real.results == base.results
    assert set(real.trace.tasks["worker"]) == {"w0"} and len(real.trace.workers) == 1
    assert set(base.trace.tasks["worker"]) == {"w0", "w1", "w2", "w3", "w4"}
    assert out_keys(ex, real) == {"s"}                                     # nothing but the sink was stored


# ------------------------------------------------------------------ selection: config and CLI
def test_a_config_selects_optimizations_per_planner_and_the_cell_applies_them() -> None:
    from experiments.config import parse_config
    from experiments.pipeline import plan_cell
    from planning.errors import ConfigError

    raw = {"workflow": [{"spec": "gen:chain:length=2"}],
           "planner": [{"name": "heft", "optimizations": ["clustering", "retention"]}, {"name": "critical-path"}]}
    config = parse_config(raw, name="opt")
    assert [p.optimizations for p in config.planners] == [("clustering", "retention"), ()]
    assert parse_config({**raw, "planner": raw["planner"][1:]}, name="opt").hash != config.hash
    spec = config.planners[0]
    cell = plan_cell(spec.make(), ALTERNATING, CATALOG, MODEL, "mean", spec.protocol, spec.optimizations)
    assert isinstance(cell.protocol, OutputRetention)
    assert cell.plan.annotations["optimizations"] == ["clustering", "retention"]
    with pytest.raises(ConfigError, match=r"planner\[0\]\.optimizations: unknown optimization 'prewarn'"):
        parse_config({**raw, "planner": [{"name": "heft", "optimizations": ["prewarn"]}]}, name="bad")


def test_the_cli_takes_optimizations_and_rejects_an_unknown_one(capsys) -> None:
    from experiments.cli import main

    assert main(["plan", "gen:chain:length=3", "--planner", "heft", "--optimizations", "clustering,retention",
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["simulate", "gen:chain:length=3", "--planner", "heft", "--optimizations", "retenton"]) == 2
    assert "unknown optimization 'retenton'" in capsys.readouterr().err


def test_a_protocol_optimization_is_a_protocol_name() -> None:
    from planning.planners import resolve_protocol

    assert resolve_protocol("retention") is OutputRetention


# ------------------------------------------------------------------ pre-warm
# a (1 s) on w0 makes b and c ready for w1 and w2, while w0 goes on with d: b's and c's workers
# are new processes (no idle one to reuse), so each pays a cold start once its task is ready.
WARMABLE = replay_workflow("warmable", [("a", "b"), ("a", "c"), ("a", "d")], runtime_s=1.0, nbytes=1000)
WARM_PLACES = {"a": "w0", "d": "w0", "b": "w1", "c": "w2"}


def test_prewarm_takes_the_cold_start_off_the_critical_path_of_the_plan() -> None:
    plan = assigned(WARMABLE, WARM_PLACES)
    warm, cls = optimize(plan, WARMABLE, MODEL, ["prewarm"])
    assert cls is WorkerProtocol and set(warm.assignment.warm_starts) == {"w1", "w2"}
    cold = MODEL.startup_s(CATALOG["small"], True, "mean")
    lead = MODEL.startup_s(CATALOG["small"], True, "p95")
    ready_b = plan.tasks.loc["b", "ready_s"]
    # hand-computed: warmed lead (p95 start-up) before b is ready, b begins on arrival instead of
    # arrival + start-up, and the plan is one (mean) cold start shorter
    assert warm.assignment.warm_starts["w1"] == pytest.approx(ready_b - lead, rel=1e-12)
    assert warm.tasks.loc["b", "download_start_s"] == pytest.approx(plan.tasks.loc["b", "download_start_s"] - cold,
                                                                     rel=1e-12)
    assert warm.makespan_s == pytest.approx(plan.makespan_s - cold, rel=1e-12)
    # the warm seconds are billed: w1 lives from its warm start
    w1 = warm.workers.set_index("worker").loc["w1"]
    assert w1["start_s"] == pytest.approx(ready_b - lead) and w1["cost"] > plan.workers.set_index("worker").loc[
        "w1", "cost"]
    # no cold start left on the critical path: every task begins when it arrives or its worker frees
    assert (warm.tasks["download_start_s"] <= warm.tasks["ready_s"] + 1e-9 + MODEL.startup_s(CATALOG["small"], True,
            "mean") * (warm.tasks["worker"] == "w0")).all()


def test_prewarm_in_the_simulation_starts_workers_before_their_first_task_is_ready() -> None:
    plan = assigned(WARMABLE, WARM_PLACES)
    warm, _ = optimize(plan, WARMABLE, MODEL, ["prewarm"])
    base, pre = simulate(WARMABLE, plan, MODEL), simulate(WARMABLE, warm, MODEL)
    workers = pre.workers.set_index("worker")
    tasks = pre.tasks.set_index("task_id")
    for w, t in (("w1", "b"), ("w2", "c")):
        assert workers.loc[w, "start_s"] == pytest.approx(warm.assignment.warm_starts[w])
        assert workers.loc[w, "ready_s"] < tasks.loc[t, "ready_s"]           # start-up over before the task is ready
        assert workers.loc[w, "cold_start"]
    b1 = base.workers.set_index("worker").loc["w1"]
    cold = b1["ready_s"] - b1["start_s"]
    assert pre.makespan_s == pytest.approx(base.makespan_s - cold, rel=1e-9)   # the cold start left the critical path


def test_prewarm_survives_a_plan_file(tmp_path) -> None:
    warm, _ = optimize(assigned(WARMABLE, WARM_PLACES), WARMABLE, MODEL, ["prewarm"])
    warm.to_json(tmp_path / "p.json")
    again = Plan.from_json(tmp_path / "p.json")
    assert again.assignment.warm_starts == pytest.approx(warm.assignment.warm_starts)
    assert not WorkerProtocol.for_plan(WARMABLE, again).compile().initial[0].task == "b"


def test_a_prewarmed_worker_starts_before_its_first_task_is_ready_in_the_real_run(ex) -> None:
    plan = assigned(WARMABLE, WARM_PLACES)
    warm, _ = optimize(plan, WARMABLE, MODEL, ["prewarm"])
    real, base = ex.run(WARMABLE, warm), ex.run(WARMABLE, plan)
    assert real.results == base.results
    workers = real.trace.workers.set_index("worker")
    tasks = real.trace.tasks.set_index("task_id")
    cold = base.trace.workers.set_index("worker").loc["w1", "ready_s"]
    assert cold > base.trace.tasks.set_index("task_id").loc["b", "ready_s"]   # without: started once b is ready
    for w, t in (("w1", "b"), ("w2", "c")):
        assert workers.loc[w, "start_s"] < tasks.loc[t, "ready_s"]
        assert workers.loc[w, "ready_s"] < tasks.loc[t, "ready_s"]          # its start-up was over by then
        assert tasks.loc[t, "worker_start_s"] < tasks.loc[t, "ready_s"]


def test_with_every_optimization_off_the_plan_and_the_simulation_are_todays() -> None:
    wf = generate("fork_join", width=4, depth=2, units=500)
    plan = get_planner("heft").plan(wf, CATALOG, MODEL, "mean")
    same, cls = optimize(plan, wf, MODEL, [])
    assert cls is WorkerProtocol and same.assignment.warm_starts == {}
    assert same.tasks.equals(plan.tasks) and same.makespan_s == plan.makespan_s
    assert WorkerProtocol.for_plan(wf, plan).compile().warm_starts == {}
    a = simulate(wf, plan, MODEL)
    b = simulate(wf, same, MODEL, protocol=cls.for_plan(wf, same))
    assert a.tasks.drop(columns="run_id").equals(b.tasks.drop(columns="run_id")) and a.makespan_s == b.makespan_s


def test_a_prewarmed_worker_killed_while_it_waits_is_restarted_and_waits_again() -> None:
    # w1 is warmed at once and waits ~3 s for b; killed meanwhile, its next generation must not
    # run b before a is done (b's input would not be on the server yet): it waits for b's notification
    import os
    import signal
    import threading
    import time

    wf = replay_workflow("warm-kill", [("a", "b")], runtime_s=3.0, nbytes=1000)
    estimates = MODEL.estimate_workflow(wf, CATALOG, "mean")
    plan = Plan.from_assignment(wf, CATALOG, estimates, MODEL, "mean", {"a": "w0", "b": "w1"},
                                {"w0": "small", "w1": "small"}, planner="assigned", warm_starts={"w1": 0.0})
    killed: list[int] = []
    with Executor(settings=ExecutorSettings(lease_s=1.0, max_task_kills=2)) as own:
        running = f"pl:{{warm-kill}}:running"

        def kill_w1() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not killed:
                holder = own.client.hget(running, "w1")
                if holder:
                    pid = int(holder.decode().split(":")[1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.05)

        killer = threading.Thread(target=kill_w1)
        killer.start()
        result = own.run(wf, plan, run_id="warm-kill")
        killer.join()
    assert killed and result.meta["restarts"] == 1          # (b fetched a's output: the run succeeded)
    tasks = result.trace.tasks.set_index("task_id")
    assert tasks.loc["b", "download_start_s"] >= tasks.loc["a", "exec_end_s"]


def test_prewarm_leaves_a_worker_the_plan_starts_on_an_idle_process() -> None:
    # a (1 s) on w0, then b on w1 and c on w2: w0 has nothing more to run, so b's worker takes its idle process
    # (a warm hand-off, no cold start to remove); c's worker still starts cold and is warmed
    wf = replay_workflow("handoff", [("a", "b"), ("a", "c")], runtime_s=1.0, nbytes=1000)
    plan = assigned(wf, {"a": "w0", "b": "w1", "c": "w2"})
    first = plan.tasks["cold_start"]
    assert first["a"] and not first["b"] and first["c"]           # the plan's own hand-off
    warm, _ = optimize(plan, wf, MODEL, ["prewarm"])
    lead = MODEL.startup_s(CATALOG["small"], True, "p95")
    assert warm.assignment.warm_starts == pytest.approx({"w2": plan.tasks.loc["c", "ready_s"] - lead})
    assert warm.tasks.loc["b", "exec_start_s"] == pytest.approx(plan.tasks.loc["b", "exec_start_s"])
    cold = MODEL.startup_s(CATALOG["small"], True, "mean")
    assert warm.tasks.loc["c", "exec_start_s"] == pytest.approx(plan.tasks.loc["c", "exec_start_s"] - cold)
    assert warm.makespan_s < plan.makespan_s


# a, d, e (0.01 s each) on w0; b (a's child) on w2 and c (d's child) on w1, each a new process: both warmed at the
# run's start (the start-up's lead is longer than their wait), w2's task is needed first although w1 sorts first
ORDERED = replay_workflow("warm-order", [("a", "d"), ("d", "c"), ("d", "e"), ("a", "b")], runtime_s=0.01, nbytes=1000)
ORDER_PLACES = {"a": "w0", "d": "w0", "e": "w0", "b": "w2", "c": "w1"}


def order_plan() -> Plan:
    """The plan with its workers listed by name (w1 before w2), not in the order their tasks are needed."""
    estimates = MODEL.estimate_workflow(ORDERED, CATALOG, "mean")
    return Plan.from_assignment(ORDERED, CATALOG, estimates, MODEL, "mean", ORDER_PLACES,
                                {w: "small" for w in ("w0", "w1", "w2")}, planner="assigned",
                                sequence={"w0": ["a", "d", "e"], "w1": ["c"], "w2": ["b"]})


def test_prewarm_orders_the_warm_starts_due_at_once_by_when_their_first_task_is_needed() -> None:
    plan = order_plan()
    assert list(plan.assignment.sequence) == ["w0", "w1", "w2"]
    warm, _ = optimize(plan, ORDERED, MODEL, ["prewarm"])
    assert warm.assignment.warm_starts == {"w2": 0.0, "w1": 0.0}
    assert list(warm.assignment.warm_starts) == ["w2", "w1"]        # b is ready before c
    assert plan.tasks.loc["b", "ready_s"] < plan.tasks.loc["c", "ready_s"]
    assert list(warm.annotations["prewarm"]["warm_starts"]) == ["w2", "w1"]


def test_the_simulated_launcher_starts_the_warm_workers_in_the_plans_order() -> None:
    from simulator.platform import Platform

    warm, _ = optimize(order_plan(), ORDERED, MODEL, ["prewarm"])
    # one core, the launcher's serial part of a cold start: the two start-ups come one after the other
    platform = Platform.for_local_host(host_cores=1.0, process_start_s=0.05, cold_start_s=0.05, keep_alive_s=0.0)
    workers = simulate(ORDERED, warm, MODEL, platform=platform).workers.set_index("worker")
    assert workers.loc["w2", "ready_s"] < workers.loc["w1", "ready_s"]


def test_the_executor_pushes_the_warm_starts_due_at_once_in_the_plans_order(ex) -> None:
    warm, _ = optimize(order_plan(), ORDERED, MODEL, ["prewarm"])
    real = ex.run(ORDERED, warm)
    workers = real.trace.workers.set_index("worker")
    assert workers.loc["w2", "start_s"] < workers.loc["w1", "start_s"]
    tasks = real.trace.tasks.set_index("task_id")
    assert workers.loc["w2", "start_s"] < tasks.loc["b", "ready_s"]
