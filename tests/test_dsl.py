"""The @task DSL: lazy calls build a Workflow whose tasks keep their code."""

from __future__ import annotations

import pickle

import pytest

from planning.errors import WorkflowError
from planning.sources.dsl import TaskResult, build_workflow, is_task_result, task
from planning.tasks import Ref
from planning.workflow import Workflow, run_locally


@task
def leaf(i):
    return i


@task(runtime_s=2.0, output_bytes=800, memory_mb=64, cores=1)
def combine(grid, named, scale=1, extra=None):
    total = sum(sum(row) for row in grid) + sum(v if isinstance(v, int) else sum(v) for v in named.values())
    return scale * total + (extra or 0)


@task
def add(a, b):
    return a + b


@task
def const():
    return 42


@task(kind="square")
def sq(x):
    return x * x


def test_nested_lists_and_dicts_mixed_with_constants():
    parts = [leaf(i) for i in range(4)]
    out = combine([[parts[0], parts[1]], [parts[2], 100]], {"x": parts[3], "y": [parts[0], 5]},
                  scale=2, extra=parts[1])
    wf = build_workflow(out, name="nested")
    assert len(wf) == 5 and wf.name == "nested"
    assert sorted(wf.parents("combine")) == ["leaf", "leaf-1", "leaf-2", "leaf-3"]
    t = wf.task("combine")
    assert (t.runtime_s, t.output_bytes, t.memory_mb, t.cores) == (2.0, 800, 64, 1)
    assert t.args[0] == [[Ref("leaf"), Ref("leaf-1")], [Ref("leaf-2"), 100]]
    assert t.args[1] == {"x": Ref("leaf-3"), "y": [Ref("leaf"), 5]}
    assert t.kwargs == {"scale": 2, "extra": Ref("leaf-1")}
    # (0 + 1 + 2 + 100) + (3 + 0 + 5) = 111; * 2 = 222; + leaf-1 = 223
    assert run_locally(wf)["combine"] == 223


def test_edge_bytes_come_from_the_parent_hint():
    wf = build_workflow(add(combine([[leaf(1)]], {}), 1))
    assert wf.edge_bytes("combine", "add") == 800
    assert wf.edge_bytes("leaf", "combine") == 0


def test_same_upstream_twice_is_one_edge():
    x = leaf(3)
    wf = build_workflow(add(x, x))
    assert wf.edges() == [("leaf", "add", 0)]
    assert run_locally(wf)["add"] == 6


def test_zero_argument_tasks():
    wf = build_workflow(add(const(), const()))
    assert sorted(wf.roots()) == ["const", "const-1"]
    assert run_locally(wf)["add"] == 84


def test_several_sinks_as_list_dict_or_nested():
    a, b = sq(leaf(2)), sq(leaf(3))
    for heads in ([a, b], (a, b), {"a": a, "b": b}, [[a], {"k": b}], (r for r in (a, b))):
        wf = build_workflow(heads)
        assert len(wf.sinks()) == 2
        results = run_locally(wf)
        assert sorted(results[s] for s in wf.sinks()) == [4, 9]


def test_kind_override_and_id_counter():
    wf = build_workflow([sq(1), sq(2), sq(3)])
    assert {t.kind for t in wf.tasks} == {"square"}
    assert sorted(wf.task_ids) == ["square", "square-1", "square-2"]


def test_wide_fan_out():
    src = leaf(1)
    outs = [add(src, i) for i in range(1000)]
    wf = build_workflow(outs)
    assert len(wf) == 1001 and wf.max_width == 1000 and wf.roots() == ["leaf"]
    results = run_locally(wf)
    assert sum(results[s] for s in wf.sinks()) == sum(1 + i for i in range(1000))


def test_named_ids():
    first = leaf.named("first")(5)
    out = add.named("total")(first, leaf(1))
    wf = build_workflow(out)
    assert set(wf.task_ids) == {"first", "leaf", "total"}
    assert run_locally(wf)["total"] == 6
    # An auto id never takes a name given explicitly.
    wf2 = build_workflow([leaf(1), leaf.named("leaf")(2)])
    assert set(wf2.task_ids) == {"leaf", "leaf-1"} and run_locally(wf2)["leaf"] == 2
    named = leaf.named("dup")
    with pytest.raises(WorkflowError, match="two calls are named 'dup'"):
        build_workflow([named(1), named(2)])


def test_results_cannot_be_used_as_values():
    r = leaf(1)
    with pytest.raises(WorkflowError, match="no value"):
        bool(r)
    with pytest.raises(WorkflowError, match="unpacked"):
        a, b = r
    assert is_task_result(r) and is_task_result([r, r]) and not is_task_result(3)
    assert isinstance(r, TaskResult) and "leaf" in repr(r)


def test_bad_calls_fail_while_building():
    with pytest.raises(WorkflowError, match="signature"):
        add(1)
    with pytest.raises(WorkflowError, match="signature"):
        leaf(1, nope=2)
    with pytest.raises(WorkflowError, match="no task results"):
        build_workflow([1, 2])


def test_run_calls_the_function_directly():
    assert add.run(2, 3) == 5 and add.__name__ == "add"


def test_task_functions_pickle_by_reference():
    back = pickle.loads(pickle.dumps(combine))
    assert back.hints == combine.hints and back.kind == "combine" and back.run([[1]], {}) == 1
    back_named = pickle.loads(pickle.dumps(leaf.named("x")))
    assert build_workflow(back_named(1)).task_ids == ["x"]


def test_json_round_trip_of_a_dsl_workflow():
    wf = build_workflow(combine([[leaf(1), leaf(2)]], {"z": sq(leaf(3))}, scale=3))
    back = Workflow.from_json(wf.to_json())
    assert run_locally(back) == run_locally(wf)
    assert back.task("combine").func.__name__ == "combine"
