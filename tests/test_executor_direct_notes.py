"""Same-host direct notes (``executor.direct_notes``): a notified worker may run its task on the note its parent's
process sent it directly, but commits nothing before the server's note confirms it - and runs the task again on the
recorded note when the two differ (the parent's process died before its commit was recorded, a re-run committed)."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

from executor import Executor, ExecutorSettings, codec, keys
from executor.auth import RunSealer
from executor.direct_notes import MAX_NOTE_BYTES, DirectNotes, note_address
from executor.messages import encode_note
from executor.plans import assigned_plan
from executor.server import EmbeddedRedis
from executor.wire import Wire, packed
from executor.worker import _LogicalWorker, takes_direct_notes
from planning.protocol import WorkerProtocol
from planning.sources.dsl import build_workflow, task

SECRET = b"0123456789abcdef0123"


@task
def inc(x):
    return x + 1


def test_a_note_reaches_the_worker_listening_on_this_host_and_nobody_else() -> None:
    sealer = RunSealer(SECRET, "r1")
    receiver = DirectNotes.listen(sealer, "wb")
    sender = DirectNotes.listen(sealer, "wa")
    try:
        assert DirectNotes.listen(sealer, "wb") is None             # the name is taken: that worker uses the server
        assert sender.send("wb", b"note") and list(receiver.take()) == [b"note"] and list(receiver.take()) == []
        assert not sender.send("wc", b"note")                        # nobody listens: dropped, the server delivers
        assert not sender.send("wb", b"x" * (MAX_NOTE_BYTES + 1))    # too large for a datagram: the server's only
        assert note_address(sealer, "wb") != note_address(RunSealer(SECRET, "r2"), "wb")   # another run's
        # without the deployment secret the name cannot be derived (abstract names carry no permissions)
        assert note_address(sealer, "wb") != note_address(RunSealer(b"another secret of 20b", "r1"), "wb")
    finally:
        receiver.close()
        sender.close()
    again = DirectNotes.listen(sealer, "wb")                           # closed: free again (nothing left on disk)
    assert again is not None
    again.close()


def _chain():
    a = inc.named("a")(1)
    b = inc.named("b")(a)
    wf = build_workflow(inc.named("c")(b), name="direct")
    plan = assigned_plan(wf, {"a": "wa", "b": "wb", "c": "wa"}, "large")
    return wf, WorkerProtocol.for_plan(wf, plan)


def _waiting_worker(client, wf, protocol) -> _LogicalWorker:
    """Worker ``wb`` as it waits for ``b`` (a's output not in memory): a real wire, socket and sealer."""
    w = _LogicalWorker.__new__(_LogicalWorker)
    code = {t.id: codec.TaskCode(t.func, t.args, dict(t.kwargs)) for t in wf.tasks}
    w.protocol, w.worker, w.keys, w.run_id = protocol, "wb", keys.RunKeys("r1"), "r1"
    w.spec = SimpleNamespace(n_parents={t: len(wf.parents(t)) for t in wf.task_ids}, coded=set(code))
    w.settings = ExecutorSettings()
    w.code, w.ran, w._ahead, w._preload, w.spin_s = code, set(), None, None, 0.0
    w.replaying = w.recovering = False
    w.state = protocol.new_state("wb")
    w.client, w.wire, w.sealer = client, Wire(client), RunSealer(SECRET, "r1")
    w.ready_time, w.prefetched, w.vouched, w.decoded = {}, {}, {}, {}
    w.direct, w._unconfirmed = DirectNotes.listen(w.sealer, "wb"), None
    inbox = w.keys.inbox("wb")
    w._wait_packed = [packed(("BLPOP", inbox, 0.2)), packed(("LPOP", inbox, 1000))]
    client.set(w.keys.live, 1)
    return w


def _note(sealer: RunSealer, t: float, value: int) -> bytes:
    return encode_note(sealer, "b", t, "a", sealer.seal(b"out:a", codec.dumps_value(value)))


def _held_input(w: _LogicalWorker) -> int:
    values, _ = w._inputs("b", w.protocol.handle_inputs("b", "wb", w.ran))
    return values["a"]


@contextmanager
def _waiting_on_direct_note(value: int) -> Iterator[tuple[_LogicalWorker, object, bytes]]:
    """``wb`` waiting for ``b``, with its pop outstanding, after ``wa``'s process sent it a note (a's output: ``value``)."""
    wf, protocol = _chain()
    with EmbeddedRedis() as server:
        client = server.client()
        w = _waiting_worker(client, wf, protocol)
        sender = DirectNotes.listen(w.sealer, "wa")
        try:
            w._decide_ahead("b")
            note = _note(w.sealer, 1.0, value)
            w.wire.send(w._wait_commands())
            assert sender.send("wb", note)
            w._wait_notifications("b")
            yield w, client, note
        finally:
            sender.close()
            w.direct.close()


def test_a_task_runs_on_a_direct_note_and_is_confirmed_by_the_servers() -> None:
    with _waiting_on_direct_note(2) as (w, client, note):
        assert w.state.is_ready("b") and w._unconfirmed == note   # taken, the server's pop still outstanding
        assert w.wire.pending == 2 and client.llen(w.keys.inbox("wb")) == 0
        assert _held_input(w) == 2
        client.rpush(w.keys.inbox("wb"), note)                     # the parent's commit, recorded
        assert w._confirm_direct("b") is True
        assert w.wire.pending == 0 and w._unconfirmed is None


def test_a_recorded_note_that_differs_replaces_the_direct_ones_inputs() -> None:
    # the parent's process sent its note and died before its commit was recorded; its re-run committed `a`
    # again, with another output: the task must run on what the server holds
    with _waiting_on_direct_note(2) as (w, client, _):
        assert _held_input(w) == 2                                 # what the speculative run read
        client.rpush(w.keys.inbox("wb"), _note(w.sealer, 5.0, 40))
        assert w._confirm_direct("b") is False
        assert _held_input(w) == 40 and w.ready_time["b"] == 5.0


def test_a_forged_or_unexpected_datagram_is_dropped_and_the_servers_note_is_used() -> None:
    wf, protocol = _chain()
    with EmbeddedRedis() as server:
        client = server.client()
        w = _waiting_worker(client, wf, protocol)
        out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            w._decide_ahead("b")
            w.wire.send(w._wait_commands())
            forged = RunSealer(b"another secret of 20b", "r1")
            to = note_address(w.sealer, "wb")
            out.sendto(_note(forged, 1.0, 99), to)
            out.sendto(b"garbage", to)
            out.sendto(encode_note(w.sealer, "c", 1.0, "a", None), to)   # not the task waited for
            w._wait_notifications("b")
            assert w._unconfirmed is None and not w.state.is_ready("b")
            client.rpush(w.keys.inbox("wb"), _note(w.sealer, 1.0, 2))
            while not w.state.is_ready("b"):
                w._wait_notifications("b")
            assert w._unconfirmed is None and _held_input(w) == 2 and w.wire.pending == 0
        finally:
            out.close()
            w.direct.close()


def _alternating(n: int):
    tasks = [inc.named("t0")(0)]
    for i in range(1, n):
        tasks.append(inc.named(f"t{i}")(tasks[-1]))
    wf = build_workflow(tasks[-1], name="alternating-direct")
    return wf, assigned_plan(wf, {f"t{i}": f"w{i % 2}" for i in range(n)}, "large")


def test_an_alternating_chain_gives_the_same_results_with_direct_notes_or_without() -> None:
    # (whether this host's load lets the workers spin, and so take direct notes, is not the test's to choose:
    # the path itself is tested above; here, that a run with them on gives what a run without gives)
    wf, plan = _alternating(60)
    with Executor(settings=ExecutorSettings(direct_notes=False)) as ex:
        off = ex.run(wf, plan)
    with Executor(settings=ExecutorSettings(direct_notes=True)) as ex:
        on = ex.run(wf, plan)
    assert on.results == off.results == {"t59": 60}
    assert off.trace.workers["direct_runs"].sum() == 0


def test_direct_notes_are_taken_only_by_a_static_first_generation_worker_that_spins() -> None:
    with EmbeddedRedis() as server:
        wire = Wire(server.client())
        assert takes_direct_notes(True, 0.0005, False, False, wire)
        assert not takes_direct_notes(False, 0.0005, False, False, wire)     # ExecutorSettings.direct_notes off
        assert not takes_direct_notes(True, 0.0, False, False, wire)         # no idle CPU: no spin
        assert not takes_direct_notes(True, 0.0005, True, False, wire)       # a dynamic protocol
        assert not takes_direct_notes(True, 0.0005, False, True, wire)       # a re-run recovers through the server

        class Routed(Wire):   # a cluster's wire
            pass
        assert not takes_direct_notes(True, 0.0005, False, False, Routed(server.client()))
