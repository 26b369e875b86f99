"""Starting workers: cgroups joined while a cold one starts, thread pools found once, code read in the first round trip, and finished workers that wake nobody mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor import Executor, ExecutorSettings
from executor.launcher.cold_limits import attach_in_background, attached_by_parent, wait_attached
from executor.limits import PREFIX, ResourceLimiter, joined_limits, probe_limits
from executor.messages import code_key
from executor.plans import assigned_plan, dynamic_plan
from executor.process import RunSpec
from planning.protocol import WorkerProtocol
from planning.sources.dsl import build_workflow, task
from planning.tasks import Task
from planning.workflow import Workflow

SUPPORT = probe_limits()
CGROUPS = SUPPORT.cpu in ("cgroup-v1", "cgroup-v2") or SUPPORT.memory in ("cgroup-v1", "cgroup-v2")
needs_cgroups = pytest.mark.skipif(not CGROUPS, reason="no cgroups here")


def _in_child(body, *args) -> tuple[int, int]:
    """Fork; run ``body(*args)`` in the child, which writes the dict it returns (JSON) to a pipe: (pid, read end)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(rd)
        try:
            result = body(*args)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(wr, json.dumps(result).encode())
        os._exit(0)
    os.close(wr)
    return pid, rd


def _read(pid: int, rd: int) -> dict:
    chunks = []
    while chunk := os.read(rd, 65536):
        chunks.append(chunk)
    os.close(rd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


@needs_cgroups
def test_the_launcher_attaches_a_forked_child_which_waits_for_it_before_running_anything() -> None:
    limiter = ResourceLimiter()
    try:
        applied = limiter.create(1.0, 512, "cold")
        assert attached_by_parent(applied)
        done_rd, done_wr = os.pipe()

        def child() -> dict:
            os.close(done_wr)
            wait_attached(applied, done_rd)
            joined = joined_limits()
            return {"cgroups": Path("/proc/self/cgroup").read_text(),
                    "joined": joined is not None and joined.limits == applied and joined.pid == os.getpid()}

        pid, rd = _in_child(child)
        os.close(done_rd)
        attach_in_background(applied, pid, done_wr)
        got = _read(pid, rd)
        assert "error" not in got, got
        assert got["joined"]
        for cg in applied.cgroups:   # the child was in every cgroup of its limits when it went on
            assert f"/{cg.name}" in got["cgroups"]
    finally:
        limiter.close(kill=True)


@needs_cgroups
def test_an_attach_that_fails_is_raised_in_the_child_not_ignored() -> None:
    limiter = ResourceLimiter()
    try:
        applied = limiter.create(1.0, 512, "cold")
        limiter.release(applied)   # its cgroups are gone: the attach must fail
        done_rd, done_wr = os.pipe()

        def child() -> dict:
            os.close(done_wr)
            wait_attached(applied, done_rd)
            return {"joined": True}

        pid, rd = _in_child(child)
        os.close(done_rd)
        attach_in_background(applied, pid, done_wr)
        got = _read(pid, rd)
        assert got["error"].startswith("RuntimeError: the launcher could not move this worker process into its cgroups")
    finally:
        limiter.close(kill=True)


def test_a_forked_worker_inherits_the_launchers_thread_pool_controller() -> None:
    # In a fresh interpreter: the controller is per process, and pytest's imports must not matter.
    script = textwrap.dedent("""
        import json, os
        from executor.limits import threads
        threads.prepare_thread_controller()
        parent = id(threads._controller())
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(wr, json.dumps({"same": id(threads._controller()) == parent,
                                     "how": threads.apply_thread_limits(1)}).encode())
            os._exit(0)
        os.close(wr)
        got = json.loads(os.read(rd, 1000))
        os.waitpid(pid, 0)
        print(json.dumps(got))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        assert got["how"] == "env"
    else:   # found once, in the parent: the child did not scan its libraries again
        assert got["same"] and got["how"] == "threadpoolctl"


@task
def where() -> str:
    return Path("/proc/self/cgroup").read_text()


@needs_cgroups
def test_a_cold_workers_first_task_runs_inside_its_cgroups() -> None:
    wf = build_workflow(where.named("only")(), name="cold-cgroup")
    plan = assigned_plan(wf, {"only": "w"}, "medium")
    with Executor(settings=ExecutorSettings(keep_alive_s=0.0)) as ex:
        result = ex.run(wf, plan)
    assert bool(result.trace.tasks.iloc[0]["cold_start"])
    mine = [line for line in result.results["only"].splitlines() if f"/{PREFIX}" in line]
    assert mine, result.results["only"]   # the task's process was in a planlab cgroup when it ran
    worker = result.trace.workers.iloc[0]
    assert str(worker.get("threads", "")).endswith(":1")   # its pools sized to the profile's CPU (after the attach)


def test_a_start_names_the_sub_dag_that_holds_its_workers_code() -> None:
    replay = Workflow.from_tasks([Task("a", "x"), Task("b", "y")], {"b": ["a"]})
    proto = WorkerProtocol.for_plan(replay, assigned_plan(replay, {"a": "wa", "b": "wb"}, "large"))
    assert code_key(RunSpec(proto, ExecutorSettings(), frozenset(), 0.0), "wb") == ""       # nothing to read
    coded = RunSpec(proto, ExecutorSettings(), frozenset({"b"}), 0.0)
    assert code_key(coded, "wb") == "wb" and code_key(coded, "wa") == ""
    dyn = WorkerProtocol.for_plan(replay, dynamic_plan(replay))
    assert code_key(RunSpec(dyn, ExecutorSettings(), frozenset({"a"}), 0.0), "anything") == "*"


OPEN_WITH_CODE = textwrap.dedent("""
    import json
    from executor import ExecutorSettings, codec, keys
    from executor.auth import RunSealer
    from executor.plans import assigned_plan
    from executor.process import ProcessContext, RunSpec
    from executor.server import redis_endpoint
    from executor.wire import unpacked
    from executor.worker_start import open_start
    from planning.protocol import WorkerProtocol
    from planning.tasks import Task
    from planning.workflow import Workflow

    secret, run = b"0123456789abcdef0123", "r1"
    wf = Workflow.from_tasks([Task("a", "x"), Task("b", "y")], {"b": ["a"]})
    proto = WorkerProtocol.for_plan(wf, assigned_plan(wf, {"a": "wa", "b": "wb"}, "large"))
    spec = RunSpec(proto, ExecutorSettings(), frozenset({"b"}), 0.0)
    sealer = RunSealer(secret, run)
    with redis_endpoint(None) as ep:
        client, k = ep.client(), keys.RunKeys(run)
        client.set(k.live, "1")
        client.set(k.protocol, sealer.seal(b"spec", codec.dumps_code(spec)))
        client.set(k.subdag("wb"), sealer.seal(b"sub:wb", codec.dumps_code({"b": "its code"})))
        ctx = ProcessContext(ep.url, "L", "large", {}, secret)
        sent = []
        send = ctx.wire.send
        ctx.wire.send = lambda cmds: (sent.append([unpacked(c)[0] for c in cmds]), send(cmds))[1]
        msg = {"run": run, "worker": "wb", "task": "b", "gen": 0, "lease_s": 3.0, "ttl_s": 60.0, "code": "wb"}
        first = open_start(ctx, msg)
        client.delete(k.subdag("wb"))                          # read by the round trip, not again
        code = ctx.code(run, "wb", None, False, first.code)
        again = open_start(ctx, {**msg, "gen": 1})            # its code is cached now: not read again
        none = open_start(ctx, {**msg, "worker": "wa", "code": ""})
        print(json.dumps({"sent": sent, "claims": [first.claim, again.claim, none.claim], "code": code,
                          "read": sorted(first.code), "none": none.code}))
""")


def test_a_started_worker_reads_its_code_in_its_first_round_trip() -> None:
    out = subprocess.run([sys.executable, "-c", OPEN_WITH_CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["sent"][0] == ["SCRIPT", "SCRIPT", "GET", "GET", "EVALSHA"]   # code, spec, claim: one write
    assert got["sent"][1] == ["EVALSHA"] and got["sent"][2] == ["EVALSHA"]
    assert len(got["sent"]) == 3 and got["claims"] == [1, 1, 1]
    assert got["read"] == ["wb"] and got["code"] == {"b": "its code"}         # from the round trip
    assert got["none"] == {"wa": None, "*": None}                             # no code: nothing read, none asked



REUSE_SPEC = textwrap.dedent("""
    import json
    from executor import ExecutorSettings, codec, keys
    from executor.auth import RunSealer
    from executor.plans import assigned_plan
    from executor.process import ProcessContext, RunSpec, spec_digest
    from executor.server import redis_endpoint
    from executor.wire import unpacked
    from executor.worker_start import open_start
    from planning.protocol import WorkerProtocol
    from planning.tasks import Task
    from planning.workflow import Workflow

    secret = b"0123456789abcdef0123"
    wf = Workflow.from_tasks([Task("a", "x"), Task("b", "y")], {"b": ["a"]})
    proto = WorkerProtocol.for_plan(wf, assigned_plan(wf, {"a": "wa", "b": "wb"}, "large"))
    payload = codec.dumps_code(RunSpec(proto, ExecutorSettings(), frozenset({"b"}), 0.0))
    code_payload = codec.dumps_code({"b": "its code"})
    digest, code_digest = spec_digest(payload), spec_digest(code_payload)
    with redis_endpoint(None) as ep:
        client = ep.client()
        ctx = ProcessContext(ep.url, "L", "large", {}, secret)
        sent = []
        send = ctx.wire.send
        ctx.wire.send = lambda cmds: (sent.append([unpacked(c)[0] for c in cmds]), send(cmds))[1]
        specs, codes, claims = [], [], []
        for run, named, code_named in (("r1", digest, code_digest), ("r2", digest, code_digest), ("r3", None, None),
                                       ("r4", "0" * 32, "1" * 32)):
            k, sealer = keys.RunKeys(run), RunSealer(secret, run)
            client.set(k.live, "1")
            client.set(k.protocol, sealer.seal(b"spec", payload))
            client.set(k.subdag("wb"), sealer.seal(b"sub:wb", code_payload))
            msg = {"run": run, "worker": "wb", "task": "b", "gen": 0, "lease_s": 3.0, "ttl_s": 60.0, "code": "wb",
                   "spec": named, "code_digest": code_named}
            opened = open_start(ctx, msg)
            specs.append(opened.spec)
            codes.append(ctx.code(run, "wb", None, False, opened.code, code_named))
            claims.append(opened.claim)
        print(json.dumps({"sent": sent, "claims": claims, "same": [s is specs[0] for s in specs],
                          "same_code": [c is codes[0] for c in codes], "code": codes[1],
                          "digests": [getattr(s, "digest", "") for s in specs], "cached": list(ctx._specs),
                          "digest": digest}))
""")


def test_a_warm_process_reuses_the_spec_and_code_an_earlier_run_named_the_same() -> None:
    out = subprocess.run([sys.executable, "-c", REUSE_SPEC], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["sent"][0] == ["SCRIPT", "SCRIPT", "GET", "GET", "EVALSHA"]   # r1: code and spec read with the claim
    assert got["sent"][1] == ["EVALSHA"]                                     # r2, same digests: only the claim
    assert got["sent"][2] == ["GET", "GET", "EVALSHA"]                       # r3 names none: both read again
    assert got["sent"][3] == ["GET", "GET", "EVALSHA"]                       # r4 names others: read again
    assert len(got["sent"]) == 4 and got["claims"] == [1, 1, 1, 1]
    assert got["same"] == [True, True, False, False]                         # r2 runs on r1's spec object
    assert got["same_code"] == [True, True, False, False] and got["code"] == {"b": "its code"}
    assert got["digests"] == [got["digest"], got["digest"], "", "0" * 32]
    assert got["cached"] == ["r3", "r4"]                                     # r1's spec moved to r2, then evicted

@task
def early() -> int:
    return 1


@task
def watch_finishes(x: int, url: str, run_id: str) -> dict:
    """Runs after worker ``wa`` (which ran only ``early``) finished: what the run's lists hold meanwhile."""
    import time as _time

    import redis

    from executor import keys

    client, k = redis.Redis.from_url(url), keys.RunKeys(run_id)
    deadline = _time.monotonic() + 10
    while b"w|wa" not in client.lrange(k.finished, 0, -1) and _time.monotonic() < deadline:
        _time.sleep(0.01)
    return {"finished": [v.decode() for v in client.lrange(k.finished, 0, -1)],
            "events": [v.decode() for v in client.lrange(k.events, 0, -1)]}


def test_a_worker_finishing_mid_run_does_not_wake_the_client() -> None:
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        wf = build_workflow(watch_finishes.named("b")(early.named("a")(), ex.url, "mid-run"), name="finishes")
        result = ex.run(wf, assigned_plan(wf, {"a": "wa", "b": "wb"}, "large"), run_id="mid-run")
    got = result.results["b"]
    assert got["finished"] == ["w|wa"]                         # its report went to the finished list
    assert not any(e.startswith("w|") for e in got["events"])   # not to the events the client waits on mid-run
    assert sorted(result.trace.workers["worker"]) == ["wa", "wb"]   # and the client still collected both
