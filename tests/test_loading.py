"""load_workflow: generators, planlab JSON, WfFormat, Python files, and its errors."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from planning.errors import WorkflowError
from planning.pyfiles import USER_MODULE_PREFIX, import_python_file, module_name_for
from planning.sources.loading import load_workflow
from planning.workflow import Workflow, run_locally

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"

USER_FILE = textwrap.dedent('''
    from planning.sources.dsl import task, build_workflow
    from planning.sources.generators import chain

    SCALE = 10

    @task(runtime_s=0.1)
    def load(i):
        return i * SCALE

    @task
    def combine(parts, opts):
        return sum(parts) + opts["bias"]

    def helper(x):
        return x + 1

    @task
    def bump(x):
        return helper(x)

    parts = [load(i) for i in range(3)]
    result = combine(parts, {"bias": 1})
    several = [bump(parts[0]), bump(parts[1])]
    by_name = {"a": bump(parts[2]), "nested": [result]}
    wf = chain(length=3, units=5)

    def make():
        return build_workflow(combine([load(7)], {"bias": 0}), name="made")

    def make_result():
        return bump(load(1))

    def needs(x):
        return wf

    NUMBER = 3
''')


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_flow.py"
    path.write_text(USER_FILE)
    yield path
    sys.modules.pop(module_name_for(path), None)


def test_generator_spec():
    wf = load_workflow("gen:random_layered:tasks=50,seed=2")
    assert len(wf) == 50 and wf.metadata["params"]["seed"] == 2


def test_planlab_json(tmp_path):
    wf = load_workflow("gen:fork_join:width=3")
    path = tmp_path / "wf.json"
    wf.to_json(path)
    back = load_workflow(str(path))
    assert back.to_dict() == wf.to_dict()
    assert load_workflow(path).to_dict() == wf.to_dict()  # a Path works too


def test_wfformat_file():
    wf = load_workflow(str(DATA / "montage-chameleon-dss-05d-001.json"))
    assert len(wf) == 58 and wf.metadata["recorded_makespan_s"] == 870.0


@pytest.mark.parametrize("attr,tasks,sinks", [
    ("result", 4, 1),          # one TaskResult
    ("several", 4, 2),         # a list of them (the graph behind them)
    ("by_name", 5, 2),         # a dict, nested
    ("wf", 3, 1),              # a Workflow
    ("make", 2, 1),            # a function returning a Workflow
    ("make_result", 2, 1),     # a function returning a TaskResult
])
def test_python_file_attributes(user_file, attr, tasks, sinks):
    wf = load_workflow(f"{user_file}:{attr}")
    assert len(wf) == tasks and len(wf.sinks()) == sinks
    assert run_locally(wf)


def test_python_file_results_are_right(user_file):
    wf = load_workflow(f"{user_file}:result")
    assert wf.name == "result"
    assert run_locally(wf)["combine"] == 0 + 10 + 20 + 1
    assert load_workflow(f"{user_file}:make").name == "made"


def test_python_file_module_is_registered_and_pickles_by_value(user_file):
    wf = load_workflow(f"{user_file}:several")
    name = module_name_for(user_file)
    assert name.startswith(USER_MODULE_PREFIX) and name in sys.modules
    func = wf.task("bump").func
    payload = cloudpickle.dumps(func)
    saved = sys.modules.pop(name)  # a worker process would not have the module
    try:
        assert pickle.loads(payload)(1) == 2  # by value, with its global helper
    finally:
        sys.modules[name] = saved


def test_python_file_is_cached_until_it_changes(user_file):
    first = import_python_file(user_file)
    assert import_python_file(user_file) is first
    user_file.write_text(USER_FILE + "\nNUMBER = 4444\n")
    second = import_python_file(user_file)
    assert second is not first and second.NUMBER == 4444


def test_json_of_a_python_file_workflow_keeps_its_code(user_file, tmp_path):
    wf = load_workflow(f"{user_file}:result")
    path = tmp_path / "wf.json"
    wf.to_json(path)
    assert str(user_file.resolve()) in path.read_text()
    back = load_workflow(str(path))
    assert run_locally(back) == run_locally(wf)


@pytest.mark.parametrize("spec,message", [
    ("gen:no_such_generator", "unknown generator"),
    ("gen:chain:bogus=1", "no parameter 'bogus'"),
    ("missing/file.json", "no such workflow file"),
    ("missing/flow.py:x", "no such Python file"),
    ("", "empty"),
])
def test_errors(spec, message):
    with pytest.raises(WorkflowError, match=message):
        load_workflow(spec)


def test_python_file_errors(user_file, tmp_path):
    with pytest.raises(WorkflowError, match="has no attribute 'nope'") as err:
        load_workflow(f"{user_file}:nope")
    assert "result" in err.value.fix and "make" in err.value.fix
    with pytest.raises(WorkflowError, match="needs arguments"):
        load_workflow(f"{user_file}:needs")
    with pytest.raises(WorkflowError, match="is of type int, not a workflow"):
        load_workflow(f"{user_file}:NUMBER")
    with pytest.raises(WorkflowError, match="no attribute"):
        load_workflow(str(user_file))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(WorkflowError, match="RuntimeError while being imported: boom"):
        load_workflow(f"{broken}:x")
    assert module_name_for(broken) not in sys.modules


def test_json_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(WorkflowError, match="malformed JSON at line 1"):
        load_workflow(str(bad))
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(WorkflowError, match="neither a planlab workflow"):
        load_workflow(str(other))
    broken_planlab = tmp_path / "p.json"
    broken_planlab.write_text('{"format": "planlab-workflow/1", "tasks": [{"id": "a", "parents": ["zz"]}]}')
    with pytest.raises(WorkflowError, match=r"p\.json: task 'a' names an unknown parent 'zz'"):
        load_workflow(str(broken_planlab))


def test_returns_workflow_instances():
    assert isinstance(load_workflow("gen:chain:length=2"), Workflow)
