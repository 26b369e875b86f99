"""Wire formats: values, constants stored once, the code-less skeleton the protocol travels with."""

from __future__ import annotations

import numpy as np

from executor import codec
from executor.replay import burn_cpu, payload, replay_bytes
from planning.protocol import WorkerProtocol
from planning.sources.generators import generate
from planning.tasks import Ref, Task


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


def test_replay_sizes_and_cpu_burn() -> None:
    assert replay_bytes(10_000, 0.5, 1_000_000) == 5000 and replay_bytes(10**12, 1.0, 4096) == 4096
    assert len(payload(123)) == 123
    import time
    t = time.thread_time()
    burn_cpu(0.05)
    assert time.thread_time() - t >= 0.05
