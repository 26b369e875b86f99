"""The worker protocol's decisions on small hand-drawn DAGs."""

from planning.protocol import Invocation, WorkerProtocol, dynamic_worker_id
from planning.tasks import Task
from planning.workflow import Workflow


def diamond() -> Workflow:
    wf = Workflow("diamond")
    for t in "abcd":
        wf.add_task(Task(t, "k", runtime_s=1.0, output_bytes=10))
    wf.add_edge("a", "b", 100)
    wf.add_edge("a", "c", 200)
    wf.add_edge("b", "d", 300)
    wf.add_edge("c", "d", 400)
    return wf


def static_protocol() -> WorkerProtocol:
    worker_of = {"a": "w0", "b": "w0", "c": "w1", "d": "w0"}
    return WorkerProtocol(diamond(), worker_of, {"w0": "small", "w1": "large"},
                          {"w0": ["a", "b", "d"], "w1": ["c"]})


def test_static_inputs_are_local_only_when_this_worker_ran_the_parent():
    p = static_protocol()
    decision = p.handle_inputs("d", "w0", ran_here={"a", "b"})
    assert decision.local == ("b",)
    assert [(f.parent, f.nbytes) for f in decision.fetch] == [("c", 400.0)]
    assert decision.fetch_bytes == 400.0


def test_static_output_is_stored_only_for_a_consumer_elsewhere_or_a_sink():
    p = static_protocol()
    assert p.handle_output("a", "w0").store is True        # c runs on w1
    assert p.handle_output("a", "w0").nbytes == 200.0      # the largest out-edge
    assert p.handle_output("b", "w0").store is False       # d runs on w0 too
    assert p.handle_output("c", "w1").store is True
    sink = p.handle_output("d", "w0")
    assert sink.store is True and sink.nbytes == 10.0      # a sink's hint


def test_static_downstream_runs_here_or_starts_the_planned_worker():
    p = static_protocol()
    decision = p.handle_downstream("a", "w0", ["c", "b"])
    assert decision.run_here == ("b",)
    assert decision.invocations == (Invocation("w1", "c", True),)
    # d is not w0's first task: the notification only says it is ready
    assert p.handle_downstream("c", "w1", ["d"]).invocations == (Invocation("w0", "d", False),)


def test_static_worker_follows_its_sequence():
    p = static_protocol()
    assert p.initial_invocations() == [Invocation("w0", "a", True)]
    state = p.new_state("w0")
    p.notified(state, "a")
    assert p.next_task(state) == "a"
    p.task_done(state, "a")
    p.after_downstream(state, p.handle_downstream("a", "w0", ["b", "c"]))
    assert p.next_task(state) == "b"
    p.task_done(state, "b")
    assert p.next_task(state) == "d" and "d" not in state.ready    # the engine waits for its notification
    p.notified(state, "d")
    p.task_done(state, "d")
    assert p.next_task(state) is None and p.is_last_task(state)


def test_dynamic_fan_out_continues_the_first_child_and_starts_the_others():
    p = WorkerProtocol(diamond(), {}, {"w0": "small"}, {}, dynamic=True)
    assert p.initial_invocations() == [Invocation(dynamic_worker_id("a"), "a", True)]
    decision = p.handle_downstream("a", "w:a", ["c", "b"])
    assert decision.run_here == ("b",)
    assert decision.invocations == (Invocation("w:c", "c", True),)
    assert p.profile_of("w:c") == "small"
    # the worker completing the fan-in's last dependency continues it
    assert p.handle_downstream("c", "w:c", ["d"]).run_here == ("d",)
    assert p.handle_downstream("b", "w:a", []).run_here == ()


def test_dynamic_output_is_kept_only_when_the_lone_child_surely_runs_here():
    wf = Workflow("chain")
    for t in "xyz":
        wf.add_task(Task(t, "k", runtime_s=1.0))
    wf.add_edge("x", "y", 5)
    wf.add_edge("y", "z", 5)
    p = WorkerProtocol(wf, {}, {"w0": "small"}, {}, dynamic=True)
    assert p.handle_output("x", "w:x").store is False
    assert p.handle_output("z", "w:x").store is True       # a sink
    d = WorkerProtocol(diamond(), {}, {"w0": "small"}, {}, dynamic=True)
    assert d.handle_output("b", "w:a").store is True       # d's other parent may finish last elsewhere


def test_worker_state_tracks_ready_tasks_once():
    p = static_protocol()
    state = p.new_state("w0")
    for _ in range(3):
        p.notified(state, "d")
    assert state.ready == ["d"] and state.is_ready("d") and not state.is_ready("a")
    p.task_done(state, "d")
    assert state.ready == [] and not state.is_ready("d")


def test_which_first_task_starts_its_worker_is_built_on_first_use_and_shipped():
    """``_first_of`` (each worker's first task, whose invocation starts it; a pre-warmed worker's is only a
    notification) is not built with the protocol - a simulation makes one per call and reads the tables - but
    when first asked, and a pickled copy (the executor's workers) carries it."""
    import pickle

    worker_of = {"a": "w0", "b": "w0", "c": "w1", "d": "w0"}
    p = WorkerProtocol(diamond(), worker_of, {"w0": "small", "w1": "large"}, {"w0": ["a", "b", "d"], "w1": ["c"]},
                       warm_starts={"w1": 0.5})
    assert "_first_of" not in vars(p)
    shipped = pickle.loads(pickle.dumps(p))
    assert vars(shipped)["_first_of"] == {"a": "w0"}           # (w1 is pre-warmed: c only notifies it)
    assert p._first_of == {"a": "w0"}
    assert [(i.task, i.start) for i in p.handle_downstream("a", "w0", ["b", "c"]).invocations] == [("c", False)]
    cold = static_protocol()                                    # (no pre-warm: c's invocation starts w1)
    assert [(i.task, i.start) for i in cold.handle_downstream("a", "w0", ["b", "c"]).invocations] == [("c", True)]
    assert cold._first_of == {"a": "w0", "c": "w1"}
