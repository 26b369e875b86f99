"""One wake-up per hop: a completion hands a start straight to an idle warm process; a short spin for a
notification that comes soon.  The launcher still learns of every start it did not hand out itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from executor import Executor, ExecutorSettings, keys
from executor.auth import RunSealer
from executor.heartbeat import Slot
from executor.launcher.pool import ProcessPool, _Child
from executor.launcher.warm_process import lost_connection
from executor.messages import decode_start
from executor.plans import assigned_plan
from executor.scripts import Scripts
from executor.server import EmbeddedRedis
from executor.wire import Wire, spin_budget
from executor.worker_reporting import WorkerReporting
from planning.errors import ExecutionError
from planning.sources.dsl import build_workflow, task

SECRET = b"0123456789abcdef0123"
START = {"type": "start", "run": "r1", "worker": "wb", "task": "b", "profile": "small", "cpus": 1.0,
         "memory_mb": 512, "threads": None, "limits": True, "lease_s": 3.0, "heartbeat_timeout_s": 10.0, "gen": 0}


def _reporter(client, launcher: str = "L", enabled: bool = True) -> SimpleNamespace:
    """What :meth:`WorkerReporting._start_op` reads of a logical worker."""
    return SimpleNamespace(ctx=SimpleNamespace(handoff_to_idle=True, launcher_id=launcher),
                           settings=ExecutorSettings(handoff_to_idle=enabled), sealer=RunSealer(SECRET, "r1"),
                           keys=keys.RunKeys("r1"), run_id="r1")


def _commit(wire: Wire, scripts: Scripts, task_id: str, ops: tuple) -> list:
    k = keys.RunKeys("r1")
    return wire.call([scripts.commit(k, task_id, "wa", "L:1:h", 60_000, "", b"", [], list(ops))])[0]


def test_a_completion_hands_a_start_to_an_idle_process_of_its_profile_else_to_the_launch_queue() -> None:
    with EmbeddedRedis() as server:
        client = server.client()
        scripts, wire, k = Scripts(client), Wire(client), keys.RunKeys("r1")
        client.hset(k.running, "wa", "L:1:h")
        client.expire(k.running, 60)
        idle = keys.idle_list("L", keys.process_pool_key(START))
        other_profile = keys.idle_list("L", keys.process_pool_key({**START, "cpus": 2.0}))
        client.rpush(other_profile, 222)
        client.rpush(idle, 111)
        client.set(keys.launcher_alive("L"), "default", px=60_000)
        op = WorkerReporting._start_op(_reporter(client), START)
        blob = op[-1]
        assert _commit(wire, scripts, "a", op) == [1]
        # the idle process of the start's profile has it on its inbox; its launcher a notice; the queue nothing
        assert client.lrange(keys.process_inbox("L", 111), 0, -1) == [b"r1\nH\n" + blob]
        assert keys.read_inbox_item(b"r1\nH\n" + blob) == ("r1", keys.BY_COMPLETION, blob)
        for bad in (b"r1\nno-tag", b"r1\nX\n" + blob, b""):
            with pytest.raises(ValueError, match="malformed process inbox item"):
                keys.read_inbox_item(bad)
        assert client.lrange(keys.launcher_handed("L"), 0, -1) == [b"111\nr1\n" + blob]
        assert decode_start(RunSealer(SECRET, "r1"), blob)["worker"] == "wb"
        assert not client.exists(k.launch) and not client.exists(idle)
        assert client.lrange(other_profile, 0, -1) == [b"222"]        # another profile's process is not taken
        # no idle process left: the launch queue, as before
        assert _commit(wire, scripts, "a2", op) == [1]
        assert client.lrange(k.launch, 0, -1) == [blob]
        # an idle process of a launcher that is gone is not handed anything
        client.delete(keys.launcher_alive("L"), k.launch)
        client.rpush(idle, 333)
        assert _commit(wire, scripts, "a3", op) == [1]
        assert client.lrange(k.launch, 0, -1) == [blob] and client.lrange(idle, 0, -1) == [b"333"]
        assert all(client.ttl(key) > 0 for key in client.scan_iter(match="pl:*") if key.decode() not in
                   (idle, other_profile))
        # switched off: a plain push to the launch queue
        assert WorkerReporting._start_op(_reporter(client, enabled=False), START)[:2] == ("P", k.launch)


def _pool(client, url: str) -> ProcessPool:
    return ProcessPool(client, url, "L", SECRET, "h")


def test_a_worker_process_that_exits_0_before_claiming_its_start_is_reported_dead() -> None:
    """A warm process ends quietly (status 0) on a redis.ConnectionError; before its claim, its start would be
    lost without a word and its run wait for good.  Its launcher reports it as any death that cost work; one
    that exits 0 after finishing (its claim released) is not reported."""
    with EmbeddedRedis() as server:
        client, k = server.client(), keys.RunKeys("r1")
        client.set(k.live, "1", ex=60)
        pool = _pool(client, server.url)
        for claimed in (False, True):
            slot = Slot()
            pid = os.fork()
            if pid == 0:   # a real lost connection's note, as the warm process writes it before it returns
                try:
                    redis.Redis(unix_socket_path="/nonexistent/planlab.sock").ping()
                except redis.ConnectionError as exc:
                    slot.note(lost_connection(exc))
                os._exit(0)
            child = _Child(pid, keys.process_pool_key(START), None, slot, serving=("r1", "wb", 0, "b"))
            pool.children[pid] = child
            if claimed:    # it claimed generation 0 and finished: its running entry is gone
                client.hset(k.claims, "wb#0", f"L:{pid}:h")
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)   # exited, not yet reaped
            pool.reap()
            assert pid not in pool.children
            events = client.lrange(k.events, 0, -1)
            if not claimed:
                assert len(events) == 1 and events[0].startswith(f"d|wb|0|b|worker process {pid} on h exited "
                                                                 "(status 0) before finishing".encode()), events
                # the cause the process noted: the exception, and where it was raised
                assert b"its connection to the server failed (ConnectionError: " in events[0], events
                assert b"No such file or directory" in events[0] and b".py:" in events[0], events
            else:
                assert len(events) == 1, events      # nothing more


def test_the_launcher_assigns_a_handed_start_restarts_one_whose_process_was_gone_and_reports_one_lost() -> None:
    blob = RunSealer(SECRET, "r1").dumps(b"start", START)
    with EmbeddedRedis() as server:
        client, k = server.client(), keys.RunKeys("r1")
        client.set(k.live, "1", ex=60)
        pool = _pool(client, server.url)
        restarted: list[dict] = []
        pool.start = lambda msg, b: restarted.append(msg)   # (a fork or another warm process: not what this tests)
        child = _Child(os.getpid(), keys.process_pool_key(START), None, Slot())
        pool.children[child.pid] = child
        pool.reap = lambda: None                            # the child is this test's own process
        assert pool.handed(child.pid, START, blob) == "assigned"
        assert child.serving == ("r1", "wb", 0, "b") and child.lease_s == 3.0
        # gone before it took the start: taken back from its inbox and started again
        inbox = keys.process_inbox("L", 4_000_000)
        client.rpush(inbox, keys.inbox_item("r1", keys.BY_COMPLETION, blob))
        assert pool.handed(4_000_000, START, blob) == "restarted"
        assert restarted == [START] and not client.exists(inbox)
        # took it (claimed) and died before its launcher read the notice: the run hears of the death
        client.hset(k.claims, "wb#0", "L:4000001:h")
        client.hset(k.running, "wb", "L:4000001:h")
        assert pool.handed(4_000_001, START, blob) == "lost"
        events = client.lrange(k.events, 0, -1)
        assert len(events) == 1 and events[0].startswith(b"d|wb|0|b|worker process 4000001 on h died before")
        # one that finished that worker (another process holds it now) cost nothing
        client.hset(k.running, "wb", "L:9:h")
        assert pool.handed(4_000_001, START, blob) == "lost" and client.llen(k.events) == 1


@task
def make(n):
    return n


@task
def plus_one(x):
    return x + 1


def _pair(body=plus_one):
    wf = build_workflow(body.named("b")(make.named("a")(41)), name="pair")
    return wf, assigned_plan(wf, {"a": "wa", "b": "wb"}, "small")


def _two_processes(ex: Executor, tmp_path: Path) -> None:
    """A first run that leaves exactly two idle processes: wa and wb each wait for the other's task to begin, so
    they run at once, on two processes.  (A pair run may not: its launcher can hand b's start to a's process,
    idle again by then - then the next pair run had one warm process and forked b cold.)"""
    here, there = str(tmp_path / "wa-began"), str(tmp_path / "wb-began")

    @task
    def meet(mine: str, other: str) -> int:
        Path(mine).write_text("began")
        deadline = time.monotonic() + 60.0
        while not Path(other).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        return int(Path(other).exists())

    wf = build_workflow([meet.named("x")(here, there), meet.named("y")(there, here)], name="meet")
    first = ex.run(wf, assigned_plan(wf, {"x": "wa", "y": "wb"}, "small"))
    assert first.results == {"x": 1, "y": 1} and list(first.trace.workers["start_via"]) == ["fork", "fork"]
    assert first.meta["handed_starts"] == 0
    assert _idle(ex) == 2             # joined in their workers' last writes: idle before the run returned


def _idle(ex: Executor) -> int:
    """How many processes wait on the launcher's idle lists."""
    return sum(ex.client.llen(k) for k in ex.client.scan_iter(match=f"pl:idle:{ex.launcher_id}:*"))


def _eventually(check, timeout: float = 10.0) -> bool:
    """``check()`` once it holds, or its last value after ``timeout`` s (the launcher reads its notices
    every 0.1 s: on a busy host, later)."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_a_warm_run_hands_its_second_worker_straight_to_an_idle_process(tmp_path: Path) -> None:
    wf, plan = _pair()
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0)) as ex:
        _two_processes(ex, tmp_path)
        result = ex.run(wf, plan)
        assert result.results == {"b": 42} and result.meta["warm_starts"] == 2
        assert result.meta["handed_starts"] == 1                    # b's start: handed by a's completion
        assert dict(zip(result.trace.workers["worker"], result.trace.workers["start_via"])) == {
            "wa": "launcher", "wb": "completion"}
        assert _eventually(lambda: not ex.client.exists(keys.launcher_handed(ex.launcher_id)))   # notice read
        ex.settings = ExecutorSettings(keep_alive_s=30.0, handoff_to_idle=False)
        assert _idle(ex) == 2
        result = ex.run(wf, plan)
        assert result.results == {"b": 42} and result.meta["warm_starts"] == 2
        assert result.meta["handed_starts"] == 0 and set(result.trace.workers["start_via"]) == {"launcher"}


def test_a_process_is_idle_when_the_run_that_it_served_returns(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The run ends when no worker runs; a process that joined its idle list after that left the next run
    no idle process (it forked cold).  Forced here: every process is held before its idle wait (the hook is
    inherited by the forked launcher and its workers) until the test has looked at the idle lists."""
    import executor.launcher.warm_process as warm_process

    gate = tmp_path / "gate"
    wait_warm = warm_process._wait_warm

    def held(*args, **kwargs):
        deadline = time.monotonic() + 30.0
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        return wait_warm(*args, **kwargs)

    monkeypatch.setattr(warm_process, "_wait_warm", held)
    wf, plan = _pair()
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0)) as ex:
        try:
            _two_processes(ex, tmp_path)
        finally:
            gate.write_text("open")
        result = ex.run(wf, plan)
        assert result.meta["warm_starts"] == 2 and result.meta["handed_starts"] == 1


def _running(pid: int) -> bool:
    """Whether process ``pid`` lives (not a zombie its launcher has yet to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_process_that_fails_after_its_last_write_leaves_its_idle_list(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An executor error after a logical worker's report (which put its process on the idle list) ends the
    process: it takes itself off the list, so no start is handed to a process that is gone."""
    import executor.worker as worker_module

    marker = tmp_path / "failed"
    run = worker_module._LogicalWorker.run

    def fails_after(self) -> None:   # inherited by the forked launcher and its workers
        run(self)
        if self.worker == "wb" and not marker.exists():
            marker.write_text(str(os.getpid()))
            raise RuntimeError("an executor error after the worker's report")

    monkeypatch.setattr(worker_module._LogicalWorker, "run", fails_after)
    wf, plan = _pair()
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0)) as ex:
        try:
            ex.run(wf, plan)   # (succeeds when its result came first, else fails on the error: either is right)
        except ExecutionError:
            pass
        # the run can return on b's result before wb's process is back from its logical worker: wait for the write
        assert _eventually(marker.exists)
        pid = int(marker.read_text())
        assert _eventually(lambda: not _running(pid))
        assert _eventually(lambda: not any(int(p) == pid for k in ex.client.scan_iter(match=f"pl:idle:{ex.launcher_id}:*")
                                           for p in ex.client.lrange(k, 0, -1)), timeout=2.0)
        assert ex.run(wf, plan).results == {"b": 42}


def test_a_process_killed_right_after_it_was_handed_a_start_has_its_task_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker, notices = tmp_path / "killed", tmp_path / "notices"
    handed = ProcessPool.handed

    def recorded(self, pid, msg, blob):   # what the launcher (forked from this process) made of each notice
        outcome = handed(self, pid, msg, blob)
        with open(notices, "a") as f:
            f.write(f"{msg['worker']} {msg.get('gen', 0)} {outcome}\n")
        return outcome

    monkeypatch.setattr(ProcessPool, "handed", recorded)

    @task
    def die_once(x):
        if not marker.exists():
            marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return x + 1

    marker.write_text("not yet")
    wf, plan = _pair(die_once)
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0, lease_s=1.0)) as ex:
        _two_processes(ex, tmp_path)
        marker.unlink()
        result = ex.run(wf, plan)
        assert result.results == {"b": 42}
        assert result.meta["task_kills"] == {"b": 1} and result.meta["restarts"] == 1
        assert "worker process" in result.meta["deaths"][0]
        # b's first start was handed straight to a process: the launcher assigned it (then reported its death when
        # it reaped it), or read the notice after the death (then reported it as lost)
        assert _eventually(notices.exists)
        assert notices.read_text().split("\n")[0] in ("wb 0 assigned", "wb 0 lost")
        assert [key for key in ex.client.scan_iter(match="pl:{*") if not key.decode().endswith(":metrics")] == []


def test_a_spin_takes_a_reply_that_comes_soon_and_gives_up_on_one_that_does_not() -> None:
    with EmbeddedRedis() as server:
        client = server.client()
        wire = Wire(client)
        assert wire.spin_for_reply(0.01) is False           # nothing outstanding
        wire.send([("BLPOP", "q", 5)])
        assert wire.spin_for_reply(0.005) is False          # nothing came: the caller blocks as usual
        threading.Timer(0.002, lambda: server.client().rpush("q", b"x")).start()
        assert wire.spin_for_reply(2.0) is True
        assert wire.read(1) == [[b"q", b"x"]]
        wire.send([("PING",)])
        assert wire.spin_for_reply(0.0) is False            # 0: never spins
        assert wire.read(1) == [b"PONG"]


def test_a_worker_spins_only_while_other_work_leaves_a_cpu_idle() -> None:
    assert spin_budget(0.0005, load=0.6, cpus=2) == 0.0005
    assert spin_budget(0.0005, load=3.9, cpus=2) == 0.0005  # the run's own processes (2) leave a CPU idle
    assert spin_budget(0.0005, load=4.0, cpus=2) == 0.0     # other work keeps every CPU busy: sleep at once
    assert spin_budget(0.0, load=0.0, cpus=2) == 0.0


@pytest.mark.parametrize("field, value", [("spin_wait_s", -0.001), ("handoff_to_idle", "yes")])
def test_the_wake_up_settings_refuse_bad_values(field: str, value: object) -> None:
    with pytest.raises(ExecutionError, match=field):
        ExecutorSettings(**{field: value})


@task
def step(x):
    return x + 1


def test_workers_that_spin_for_their_notifications_and_first_replies_run_a_chain_correctly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The spin forced on (an idle host, as the forked launcher and workers inherit): an alternating chain, every
    hop a wait that the spin catches, and a started worker's first round trip, give the local answer."""
    import executor.wire

    monkeypatch.setattr(executor.wire.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert spin_budget(0.01) == 0.01
    x = make.named("t0")(0)
    for i in range(1, 60):
        x = step.named(f"t{i}")(x)
    wf = build_workflow(x, name="alternating")
    plan = assigned_plan(wf, {f"t{i}": f"w{i % 2}" for i in range(60)}, "small")
    pair, pair_plan = _pair()
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0, spin_wait_s=0.01)) as ex:
        for _ in range(2):   # cold, then warm processes (b's start handed straight to one)
            assert ex.run(wf, plan).results == {"t59": 59}
            assert ex.run(pair, pair_plan).results == {"b": 42}


def test_a_worker_polls_for_its_commit_reply_before_it_sleeps_for_it() -> None:
    """The commit's reply comes one server step after the write: the worker spins for it (its spin budget) before
    the blocking read, so that reply does not cost a scheduler wake-up on the critical path."""
    from executor.worker import _LogicalWorker

    calls: list[tuple] = []

    class RecordingWire:
        def spin_for_reply(self, seconds: float) -> bool:
            calls.append(("spin", seconds))
            return True

        def read(self, n: int) -> list:
            calls.append(("read", n))
            return [[1, b"c"]]

    w = _LogicalWorker.__new__(_LogicalWorker)
    w.wire, w.spin_s = RecordingWire(), 0.0005
    assert w._commit_reply() == [1, b"c"]
    assert calls == [("spin", 0.0005), ("read", 1)]
