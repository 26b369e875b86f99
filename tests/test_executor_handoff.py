"""The data hand-off and a worker's start: one round trip for the first input, the spec and the claim."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from executor import Executor, ExecutorSettings, keys
from executor.plans import assigned_plan
from executor.scripts import Scripts
from executor.server import redis_endpoint
from executor.worker_start import fetch_hint
from planning.protocol import WorkerProtocol
from planning.sources.dsl import build_workflow, task
from planning.tasks import Task
from planning.workflow import Workflow

# Run in a fresh interpreter: loading a spec freezes the heap (gc.freeze), which must not be pytest's.
OPEN_START = textwrap.dedent("""
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
    wf = Workflow.from_tasks([Task("a", "x", output_bytes=300_000), Task("b", "y", output_bytes=8)], {"b": ["a"]},
                             edge_bytes={("a", "b"): 300_000})
    proto = WorkerProtocol.for_plan(wf, assigned_plan(wf, {"a": "wa", "b": "wb"}, "large"))
    spec = RunSpec(proto, ExecutorSettings(), frozenset(), 0.0)
    output = bytes(range(256)) * 1200          # 307,200 bytes: a GETRANGE of the edge's 300,000
    with redis_endpoint(None) as ep:
        client, k = ep.client(), keys.RunKeys(run)
        client.set(k.live, "1")
        client.set(k.protocol, RunSealer(secret, run).seal(b"spec", codec.dumps_code(spec)))
        client.set(k.out("a"), output)
        ctx = ProcessContext(ep.url, "L", "large", {}, secret)
        sent = []
        send = ctx.wire.send
        ctx.wire.send = lambda cmds: (sent.append([unpacked(c)[0] for c in cmds]), send(cmds))[1]
        msg = {"run": run, "worker": "wb", "task": "b", "gen": 0, "lease_s": 3.0, "ttl_s": 60.0,
               "fetch": ("a", 300_000)}
        first = open_start(ctx, msg)
        again = open_start(ctx, msg)                         # the same start a second time: a duplicate
        missing = open_start(ctx, {**msg, "gen": 1, "fetch": ("gone", None)})
        client.delete(k.live, k.protocol)
        over = open_start(ctx, {**msg, "run": "r2", "gen": 0})
        print(json.dumps({
            "sent": sent, "claims": [first.claim, again.claim, missing.claim, over.claim],
            "spec_tasks": sorted(first.spec.protocol.index), "same_spec": again.spec is first.spec,
            "prefetched": {p: len(v) for p, v in first.prefetched.items()},
            "intact": bytes(first.prefetched["a"]) == output[:300_000],
            "missing_prefetched": missing.prefetched, "over_spec": over.spec is None,
            "holder": client.hget(k.claims, "wb#0").decode() == ctx.holder}))
""")


def test_a_started_worker_fetches_its_input_loads_the_spec_and_claims_in_one_round_trip() -> None:
    out = subprocess.run([sys.executable, "-c", OPEN_START], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # the first start: hinted input first, the scripts (a new process), the spec, the claim - one write
    assert got["sent"][0] == ["GETRANGE", "SCRIPT", "SCRIPT", "GET", "EVALSHA"]
    assert got["sent"][1] == ["GETRANGE", "EVALSHA"]           # spec cached, scripts loaded
    assert len(got["sent"]) == 4                                # one round trip per start
    assert got["claims"] == [1, -1, 1, 0]                       # claimed; duplicate; next generation; run over
    assert got["spec_tasks"] == ["a", "b"] and got["same_spec"] and got["holder"]
    assert got["prefetched"] == {"a": 300_000} and got["intact"]   # the edge's share, intact
    assert got["missing_prefetched"] == {}                      # a missing output is left to the child's fetch
    assert got["over_spec"]


def _fan(edge: int) -> Workflow:
    return Workflow.from_tasks([Task("a", "x", output_bytes=5000), Task("b", "y"), Task("c", "y")],
                               {"b": ["a"], "c": ["a"]}, edge_bytes={("a", "b"): edge, ("a", "c"): 0})


def test_the_fetch_hint_names_what_the_child_will_read() -> None:
    from executor.process import RunSpec

    wf = _fan(1200)
    proto = WorkerProtocol.for_plan(wf, assigned_plan(wf, {"a": "w0", "b": "w1", "c": "w2"}, "large"))
    spec = RunSpec(proto, ExecutorSettings(), frozenset(), 0.0)
    assert fetch_hint(spec, "b", "w1", "a") == ("a", 1200)     # the replayed edge's share, not the output
    assert fetch_hint(spec, "c", "w2", "a") is None             # nothing to read
    assert fetch_hint(spec, "b", "w1", "a", stored=5000) == ("a", 1200)   # a share of a larger output: GETRANGE
    whole = WorkerProtocol.for_plan(_fan(5000), assigned_plan(_fan(5000), {"a": "w0", "b": "w1", "c": "w2"}, "large"))
    spec_whole = RunSpec(whole, ExecutorSettings(), frozenset(), 0.0)
    assert fetch_hint(spec_whole, "b", "w1", "a", stored=5000) == ("a", None)   # all of it: read by GET
    assert fetch_hint(spec_whole, "b", "w1", "a") == ("a", 5000)                # (its length unknown)
    coded = RunSpec(proto, ExecutorSettings(), frozenset({"a"}), 0.0)
    assert fetch_hint(coded, "b", "w1", "a") == ("a", None)     # a pickled output is read whole


def test_a_child_reads_only_its_edges_share_of_a_large_replayed_output() -> None:
    wf = Workflow.from_tasks([Task("a", "x", output_bytes=2_000_000), Task("b", "y", output_bytes=8),
                              Task("c", "y", output_bytes=8)],
                             {"b": ["a"], "c": ["a"]}, edge_bytes={("a", "b"): 700_000, ("a", "c"): 2_000_000})
    plan = assigned_plan(wf, {"a": "wa", "b": "wb", "c": "wc"}, "large")
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        ex.client.config_resetstat()
        tasks = ex.run(wf, plan).trace.validate().tasks.set_index("task_id")
        ranges = ex.client.info("commandstats").get("cmdstat_getrange", {}).get("calls", 0)
    assert ranges == 1     # b's share; c reads the whole output by GET, which the server sends uncopied
    assert tasks.at["a", "output_bytes"] == 2_000_000
    assert tasks.at["b", "input_bytes"] == 700_000 and tasks.at["c", "input_bytes"] == 2_000_000
    assert tasks.at["a", "exec_end_s"] <= min(tasks.at["b", "exec_start_s"], tasks.at["c", "exec_start_s"])
    for child in ("b", "c"):   # fetched in the start's round trip, and still timed as the child's download
        assert tasks.at["a", "upload_end_s"] <= tasks.at[child, "download_start_s"]
        assert tasks.at[child, "worker_start_s"] <= tasks.at[child, "download_start_s"] \
            < tasks.at[child, "download_end_s"] <= tasks.at[child, "exec_start_s"]


@task
def blob(n):
    return bytes(range(256)) * n


@task
def checksum(data, more):
    import hashlib
    return hashlib.sha256(data + more).hexdigest()


def test_pickled_inputs_handed_to_a_started_worker_arrive_intact_from_every_parent() -> None:
    # b's worker is started by the first parent to finish; the other parent's output is fetched as usual
    wf = build_workflow(checksum.named("c")(blob.named("a")(4096), blob.named("b")(8192)), name="two-parents")
    plan = assigned_plan(wf, {"a": "wa", "b": "wb", "c": "wc"}, "large")
    from planning.workflow import run_locally

    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as ex:
        for _ in range(2):   # cold, then warm processes
            assert ex.run(wf, plan).results == {"c": run_locally(wf)["c"]}


def test_a_dead_process_left_on_the_idle_list_does_not_lose_a_start() -> None:
    wf = Workflow.from_tasks([Task("only", "x", output_bytes=8)], {}, name="one")
    plan = assigned_plan(wf, {"only": "w"}, "large")
    with Executor(settings=ExecutorSettings(keep_alive_s=30.0)) as ex:
        ex.run(wf, plan)
        # the run ends at the worker's report; its process joins the idle list just after (on a busy host, later)
        deadline = time.monotonic() + 10.0
        while True:
            idle = [k.decode() for k in ex.client.scan_iter(match=f"pl:idle:{ex.launcher_id}:*")
                    if ex.client.llen(k)]
            if idle or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len(idle) == 1
        ex.client.rpush(idle[0], 4_000_000)          # no such child: popped first, its message taken back
        second = ex.run(wf, plan)
        assert second.meta["warm_starts"] == 1 and second.meta["cold_starts"] == 0
        assert not ex.client.exists(keys.process_inbox(ex.launcher_id, 4_000_000))


def test_scripts_without_a_client_are_loaded_by_the_first_round_trip() -> None:
    with redis_endpoint(None) as ep:
        client = ep.client()
        lazy = Scripts(None)
        loads = lazy.load_commands()
        assert [c[:2] for c in loads] == [("SCRIPT", "LOAD")] * 2
        assert [r.decode() for r in client.pipeline().execute_command(*loads[0]).execute_command(*loads[1])
                .execute()] == [lazy.commit_sha, lazy.claim_sha]
        lazy.loaded = True
        assert lazy.load_commands() == []
        eager = Scripts(client)                     # given a client: loaded now, same digests
        assert eager.loaded and (eager.commit_sha, eager.claim_sha) == (lazy.commit_sha, lazy.claim_sha)


def test_a_share_that_is_the_whole_output_is_read_by_get() -> None:
    from executor.replay import read_command

    assert read_command("k", None) == ("GET", "k")                  # a pickled output
    assert read_command("k", 100, 100) == ("GET", "k")              # a replay edge carrying all of it
    assert read_command("k", 40, 100) == ("GETRANGE", "k", 0, 39)   # a share of a larger output
    assert read_command("k", 40) == ("GETRANGE", "k", 0, 39)        # its length unknown: only the share
