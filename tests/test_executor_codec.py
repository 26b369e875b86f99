"""Wire formats: values, constants stored once, the code-less skeleton the protocol travels with."""

from __future__ import annotations

import numpy as np

from executor import codec
from executor.replay import burn_cpu, payload, replay_bytes
from planning.protocol import WorkerProtocol
from planning.sources.generators import generate
from planning.tasks import Ref, Task
from planning.workflow import Workflow


def test_values_round_trip_including_ones_plain_pickle_refuses() -> None:
    for value in (3, {"a": [1, (2, 3)]}, np.arange(5), b"raw", lambda x: x + 1):
        back = codec.loads_value(codec.dumps_value(value))
        if callable(value):
            assert back(1) == 2
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back, value)
        else:
            assert back == value


def test_large_arguments_become_one_shared_constant() -> None:
    big = np.ones(100_000)
    constants: dict[str, bytes] = {}
    a = codec.split_constants(Task("a", "k", func=sum, args=(big, 1), kwargs={"w": big}), 1024, constants)
    b = codec.split_constants(Task("b", "k", func=sum, args=(big, Ref("a"))), 1024, constants)
    assert len(constants) == 1
    digest = next(iter(constants))
    assert a.args[0] == codec.ConstRef(digest) and a.kwargs["w"] == codec.ConstRef(digest) and a.args[1] == 1
    assert b.args[1] == Ref("a")                        # upstream references stay inline
    resolved = codec.resolve_constants(a, lambda d: codec.loads_code(constants[d]))
    np.testing.assert_array_equal(resolved.args[0], big)


def test_the_skeleton_has_no_code_and_the_same_protocol_decisions() -> None:
    wf = generate("random_layered", tasks=40, seed=5)
    skel = codec.skeleton(wf)
    assert all(t.func is None and not t.args for t in skel.tasks)
    assert skel.topological_order() == wf.topological_order()
    worker_of = {t: f"w{i % 3}" for i, t in enumerate(wf.task_ids)}
    seq = {w: [t for t in wf.task_ids if worker_of[t] == w] for w in ("w0", "w1", "w2")}
    a = WorkerProtocol(wf, worker_of, {w: "small" for w in seq}, seq)
    b = WorkerProtocol(skel, worker_of, {w: "small" for w in seq}, seq)
    for t in wf.task_ids:
        assert a.handle_output(t, worker_of[t]) == b.handle_output(t, worker_of[t])
        assert a.handle_downstream(t, worker_of[t], wf.children(t)) == b.handle_downstream(t, worker_of[t], wf.children(t))



def test_the_skeleton_ships_the_built_topology_without_the_original_tasks() -> None:
    wf = generate("random_layered", tasks=40, seed=5)
    assert codec.skeleton(wf)._cache == {}         # nothing built yet: nothing shipped, built where asked
    built = wf.topology()
    _ = built.tasks, built.kinds                   # cached reads of the original tasks (with their code)
    skel = codec.skeleton(wf)
    shipped = skel._cache["topology"]
    assert skel.topology() is shipped and shipped is not built
    assert shipped.ids == built.ids and shipped.children == built.children
    np.testing.assert_array_equal(shipped.out_bytes, built.out_bytes)
    assert "tasks" not in vars(shipped) and "kinds" not in vars(shipped)
    assert all(t.func is None for t in shipped.tasks)          # read again, from the skeleton's nodes
    assert shipped.kinds == built.kinds
    back = codec.loads_code(codec.dumps_code(skel))   # what a worker unpickles: no task function inside
    assert all(t.func is None for t in back.topology().tasks)
    assert back.topology().index == built.index and back.topological_order() == wf.topological_order()


class _SameInputs(WorkerProtocol):
    """Overrides handle_inputs without changing it: its retention is asked of the hook, task by task."""

    def handle_inputs(self, task_id, worker, ran_here):
        return super().handle_inputs(task_id, worker, ran_here)


def test_retention_of_the_base_rule_equals_asking_the_hook() -> None:
    wf = generate("random_layered", tasks=60, seed=3)
    ids = wf.task_ids
    worker_of = {t: f"w{(i * 7 // 5) % 3}" for i, t in enumerate(ids)}
    seq = {w: [t for t in ids if worker_of[t] == w] for w in ("w0", "w1", "w2")}
    profiles = {w: "small" for w in seq}
    base, hooked = WorkerProtocol(wf, worker_of, profiles, seq), _SameInputs(wf, worker_of, profiles, seq)
    for w in seq:
        assert base.retention(w) == hooked.retention(w)
    # hand-computed on a chain a -> b -> c with a, c on w0 and b on w1: no output is read locally
    chain = Workflow.from_tasks([Task(t, "k") for t in "abc"], {"b": ["a"], "c": ["b"]})
    p = WorkerProtocol(chain, {"a": "w0", "b": "w1", "c": "w0"}, {"w0": "s", "w1": "s"}, {"w0": ["a", "c"], "w1": ["b"]})
    assert p.retention("w0") == {"a": 0, "c": 0} and p.retention("w1") == {"b": 0}
    q = WorkerProtocol(chain, {t: "w0" for t in "abc"}, {"w0": "s"}, {"w0": ["a", "b", "c"]})
    assert q.retention("w0") == {"a": 1, "b": 1, "c": 0}

def test_replay_sizes_and_cpu_burn() -> None:
    assert replay_bytes(10_000, 0.5, 1_000_000) == 5000 and replay_bytes(10**12, 1.0, 4096) == 4096
    assert len(payload(123)) == 123
    import time
    t = time.thread_time()
    burn_cpu(0.05)
    assert time.thread_time() - t >= 0.05
