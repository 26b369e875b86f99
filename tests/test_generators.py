"""Generators build valid, executable workflows; specs parse with clear errors."""

from __future__ import annotations


import numpy as np
import pytest

from planning.errors import WorkflowError
from planning.sources import generators as gens
from planning.sources import kernels
from planning.sources.generator_specs import parse_generator_spec
from planning.sources.generators import FIVE_BRANCH_LENGTHS, GENERATORS, generate, list_generators, register_generator
from planning.tasks import iter_refs
from planning.workflow import Workflow, run_locally

#: Small instances of every built-in generator (a real local run takes < 1 s in all).
SMALL = {
    "chain": {"length": 4, "units": 1000},
    "fork_join": {"width": 3, "depth": 2, "units": 1000},
    "tree_reduction": {"leaves": 5, "arity": 3, "units": 1000},
    "gemm": {"blocks": 2, "block_size": 8},
    "random_layered": {"tasks": 40, "seed": 3, "runtime_median_s": 0.0002},
    "fan_out": {"width": 20},
    "deep_chain": {"length": 30},
    "five_branches": {"size": 16, "rounds": 3},
}


def test_small_covers_every_builtin():
    assert set(SMALL) <= set(GENERATORS)
    assert {"chain", "fork_join", "tree_reduction", "gemm", "random_layered", "fan_out", "deep_chain",
            "five_branches"} <= set(GENERATORS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_defaults_build_valid_executable_workflows(name):
    wf = generate(name)
    assert isinstance(wf, Workflow) and wf.validate() is wf
    assert wf.metadata["generator"] == name
    for t in wf.tasks:
        assert t.executable and t.runtime_s is not None and t.runtime_s >= 0 and t.output_bytes > 0
        assert t.func.__module__ == "planning.sources.kernels"
        # parents are exactly the refs in the arguments
        assert set(iter_refs((t.args, t.kwargs))) == set(wf.parents(t.id))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_instances_run_locally_and_deterministically(name):
    wf = generate(name, **SMALL[name])
    first, second = run_locally(wf), run_locally(wf)
    assert set(first) == set(wf.task_ids)
    for sink in wf.sinks():
        assert first[sink] is not None
        assert np.array_equal(np.asarray(first[sink]), np.asarray(second[sink]))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_json_round_trip_keeps_code_importable(name):
    wf = generate(name, **SMALL[name])
    back = Workflow.from_json(wf.to_json())
    assert back.metadata == wf.metadata and back.structure_hash() == wf.structure_hash()
    assert all(t.func is wf.task(t.id).func for t in back.tasks)
    a, b = run_locally(wf), run_locally(back)
    assert all(np.array_equal(np.asarray(a[s]), np.asarray(b[s])) for s in wf.sinks())


def test_defaults_run_for_real():
    # Speed belongs to benchmarks/; here: every default size runs and yields every sink.
    for name in GENERATORS:
        if name in SMALL:
            wf = generate(name)
            results = run_locally(wf)
            assert set(results) >= set(wf.sinks()) and all(results[s] is not None for s in wf.sinks())


# ---------------------------------------------------------------- shapes
def test_chain_and_deep_chain():
    wf = gens.chain(length=6)
    assert len(wf) == 6 and wf.depth == 6 and wf.max_width == 1 and wf.roots() == ["t0"] and wf.sinks() == ["t5"]
    r = run_locally(gens.chain(length=2, units=10))
    assert r["t1"] == kernels.spin(10, kernels.spin(10))
    assert gens.deep_chain().depth == 1000


def test_fork_join_shape():
    wf = gens.fork_join(width=4, depth=3)
    assert len(wf) == 1 + 3 * (4 + 1)
    assert wf.roots() == ["fork"] and wf.sinks() == ["s2-join"]
    assert wf.depth == 1 + 2 * 3 and wf.max_width == 4
    assert sorted(wf.parents("s1-join")) == [f"s1-w{j}" for j in range(4)]
    assert wf.parents("s1-w0") == ["s0-join"]


def test_tree_reduction_shape():
    wf = gens.tree_reduction(leaves=9, arity=3)
    assert len(wf) == 9 + 3 + 1 and len(wf.sinks()) == 1 and wf.depth == 3
    wf2 = gens.tree_reduction(leaves=5, arity=2)  # 5 -> 3 -> 2 -> 1
    assert len(wf2) == 5 + 3 + 2 + 1 and wf2.depth == 4
    assert len(gens.tree_reduction(leaves=1)) == 1


def test_gemm_computes_the_product():
    b, n = 3, 8
    wf = gens.gemm(blocks=b, block_size=n, seed=5)
    assert len(wf) == 2 * b * b + b ** 3 + b * b + 1
    assert {t.kind for t in wf.tasks} == {"gemm_make", "gemm_multiply", "gemm_add", "gemm_assemble"}
    assert sorted(wf.parents("mul-0-1-2")) == ["A-0-2", "B-2-1"]
    r = run_locally(wf)
    A = np.block([[r[f"A-{i}-{k}"] for k in range(b)] for i in range(b)])
    B = np.block([[r[f"B-{k}-{j}"] for j in range(b)] for k in range(b)])
    assert r["C"].shape == (b * n, b * n)
    assert np.allclose(r["C"], A @ B)
    assert wf.sinks() == ["C"]
    assert wf.edge_bytes("A-0-0", "mul-0-0-0") == n * n * 8 + gens.ARRAY_OVERHEAD_BYTES


def test_fan_out_shape():
    wf = gens.fan_out()
    assert len(wf) == 1002 and wf.max_width == 1000 and wf.roots() == ["src"] and wf.sinks() == ["sink"]
    assert len(wf.parents("sink")) == 1000


def test_five_branches_shape_and_critical_path():
    wf = gens.five_branches(size=16, rounds=2)
    assert len(wf) == sum(FIVE_BRANCH_LENGTHS) + 1 == 16
    assert wf.sinks() == ["sink"] and len(wf.roots()) == 5
    assert sorted(wf.parents("sink")) == ["b0-t4", "b1-t3", "b2-t2", "b3-t1", "b4-t0"]
    for b, length in enumerate(FIVE_BRANCH_LENGTHS):
        chain = [f"b{b}-t{i}" for i in range(length)]
        assert all(wf.parents(c) == [p] for p, c in zip(chain, chain[1:]))
    _, path = wf.critical_path()
    assert path == [f"b0-t{i}" for i in range(5)] + ["sink"]
    r = run_locally(wf)
    assert r["sink"] == pytest.approx(sum(r[p] for p in wf.parents("sink")))
    assert all(abs(v) <= 2 for v in r.values())


def test_five_branches_runtime_hint_grows_with_the_work():
    # How close the hint is to a real run is measured where timing belongs (benchmarks, the profile phase).
    small, big = gens.five_branches(size=128, rounds=20), gens.five_branches(size=256, rounds=20)
    longer = gens.five_branches(size=128, rounds=40)
    hint = lambda wf: wf.task("b0-t0").runtime_s
    assert 0 < hint(small) < hint(big) and hint(small) < hint(longer)


# ---------------------------------------------------------------- random_layered
def test_random_layered_is_reproducible_under_a_seed():
    a, b = gens.random_layered(tasks=200, seed=7), gens.random_layered(tasks=200, seed=7)
    assert a.to_dict() == b.to_dict()
    c = gens.random_layered(tasks=200, seed=8)
    assert a.to_dict()["tasks"] != c.to_dict()["tasks"]


def test_random_layered_structure():
    wf = gens.random_layered(tasks=500, seed=2, max_parents=4, kinds=3)
    layers = wf.metadata["params"]["layers"]
    assert len(wf) == 500 and layers == round(500 ** 0.5)
    layer_of = {t: int(t.split("-")[0][1:]) for t in wf.task_ids}
    assert wf.depth == layers
    for t in wf.task_ids:
        ps = wf.parents(t)
        if layer_of[t] == 0:
            assert ps == []
        else:
            assert 1 <= len(ps) <= 4
            assert all(layer_of[p] < layer_of[t] for p in ps)
            assert any(layer_of[p] == layer_of[t] - 1 for p in ps)
        assert wf.levels()[t] == layer_of[t]
    assert {t.kind for t in wf.tasks} <= {"k0", "k1", "k2"}
    # the hint is what the payload really is
    r = run_locally(gens.random_layered(tasks=30, seed=1, runtime_median_s=0.0001))
    wf30 = gens.random_layered(tasks=30, seed=1, runtime_median_s=0.0001)
    assert all(len(r[t.id]) == t.output_bytes for t in wf30.tasks)


def test_random_layered_explicit_layers_and_errors():
    wf = gens.random_layered(tasks=10, layers=10)
    assert wf.depth == 10 and wf.max_width == 1
    assert gens.random_layered(tasks=5, layers=1).depth == 1
    with pytest.raises(WorkflowError, match="layers"):
        gens.random_layered(tasks=3, layers=4)
    with pytest.raises(WorkflowError, match="tasks must be"):
        gens.random_layered(tasks=0)


def test_random_layered_builds_10k_tasks():
    wf = gens.random_layered(tasks=10_000, seed=1)   # its build time is measured by benchmarks/bench_planning.py
    assert len(wf) == 10_000 and wf.depth == round(10_000 ** 0.5)


# ---------------------------------------------------------------- specs and registry
def test_parse_generator_spec_coerces_types():
    wf = parse_generator_spec("gen:random_layered:tasks=300,seed=1,layers=none,runtime_median_s=1e-4")
    assert len(wf) == 300 and wf.metadata["params"]["seed"] == 1
    assert wf.metadata["params"]["runtime_median_s"] == 1e-4
    assert len(parse_generator_spec("gen:random_layered:tasks=1e2")) == 100
    assert (parse_generator_spec("gen:random_layered:tasks=300,seed=1,layers=None").to_dict()
            == parse_generator_spec(" random_layered : tasks=300, seed=1 ").to_dict()
            == gens.random_layered(tasks=300, seed=1).to_dict())
    assert len(parse_generator_spec("gen:random_layered:tasks=50,layers=5")) == 50
    assert len(parse_generator_spec("gen:chain")) == 10


def test_parse_generator_spec_errors_list_what_is_valid():
    with pytest.raises(WorkflowError, match="unknown generator 'nope'") as err:
        parse_generator_spec("gen:nope")
    assert "random_layered" in err.value.fix and "five_branches" in err.value.fix
    with pytest.raises(WorkflowError, match="no parameter 'size'") as err:
        parse_generator_spec("gen:chain:size=3")
    assert "length=10" in err.value.fix
    with pytest.raises(WorkflowError, match="'length' expects int, got 'ten'"):
        parse_generator_spec("gen:chain:length=ten")
    with pytest.raises(WorkflowError, match="expects int"):
        parse_generator_spec("gen:chain:length=2.5")
    with pytest.raises(WorkflowError, match="key=value"):
        parse_generator_spec("gen:chain:length")
    with pytest.raises(WorkflowError, match="twice"):
        parse_generator_spec("gen:chain:length=2,length=3")
    with pytest.raises(WorkflowError, match="length must be"):
        parse_generator_spec("gen:chain:length=0")
    with pytest.raises(WorkflowError, match="no parameter"):
        generate("chain", size=3)


def test_register_a_custom_generator():
    @register_generator("pair_for_test")
    def pair(units: int = 5, flag: bool = False, label: str = "x") -> Workflow:
        wf = gens.chain(length=2, units=units)
        wf.metadata.update(flag=flag, label=label)
        return wf

    try:
        wf = parse_generator_spec("gen:pair_for_test:units=7,flag=yes,label=hello")
        assert wf.metadata["flag"] is True and wf.metadata["label"] == "hello"
        assert wf.task("t0").args == (7,)
        assert list_generators()["pair_for_test"] == {"units": 5, "flag": False, "label": "x"}
        with pytest.raises(WorkflowError, match="already registered"):
            register_generator("pair_for_test")(lambda: wf)
        register_generator("pair_for_test", replace=True)(pair)
        with pytest.raises(WorkflowError, match="expects bool"):
            parse_generator_spec("gen:pair_for_test:flag=maybe")
    finally:
        GENERATORS.pop("pair_for_test", None)
    with pytest.raises(WorkflowError, match="no default"):
        register_generator("needs_args_for_test")(lambda n: None)
    assert "needs_args_for_test" not in GENERATORS


# ---------------------------------------------------------------- kernels
def test_spin_depends_on_units_and_every_input():
    assert kernels.spin(100) == kernels.spin(100)
    assert kernels.spin(100) != kernels.spin(101)
    assert kernels.spin(100, 1, 2) != kernels.spin(100, 2, 1) != kernels.spin(100, 1)
    assert 0 <= kernels.spin(1000, np.ones(3), b"abc", 0.5, None, {"a": [1]}) < 2 ** 31
    p = kernels.spin_payload(10, 100, 3)
    assert len(p) == 100 and kernels.digest(p) == kernels.digest(kernels.spin_payload(10, 100, 3))
    assert kernels.noop(1, 2) != kernels.noop(2, 1)


def test_matrix_work_is_bounded_and_input_sensitive():
    a = kernels.matrix_work(None, 24, 30, seed=1)
    assert a == kernels.matrix_work(None, 24, 30, seed=1)
    assert a != kernels.matrix_work(0.3, 24, 30, seed=1) and a != kernels.matrix_work(None, 24, 30, seed=2)
    v = None
    for step in range(20):
        v = kernels.matrix_work(v, 16, 5, seed=step)
        assert abs(v) <= 2


def test_measure_rates_is_positive():
    rates = kernels.measure_rates(spin_units=10_000, matmul_size=32, repeats=1)
    assert rates["spin_units_per_s"] > 0 and rates["matmul_flops_per_s"] > 0
