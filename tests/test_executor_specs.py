"""A warm worker process keeps run specs out of the garbage collector's walks without keeping dead ones."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Run in a fresh interpreter: gc.freeze() acts on the whole process, which must not be pytest's.
SCRIPT = textwrap.dedent("""
    import gc, json, pickle, sys
    from executor import keys
    from executor.auth import RunSealer
    from executor.server import redis_endpoint
    from executor.worker import FROZEN_SLACK_OBJECTS, ProcessContext

    cyclic = sys.argv[1] == "cyclic"
    N = 30_000

    def spec_blob(i):
        if cyclic:      # every container in a reference cycle: only a full collection frees them
            items = [[] for _ in range(N)]
            for item in items:
                item.append(item)
            return pickle.dumps({"run": i, "items": items})
        return pickle.dumps({"run": i, "items": [{"k": [j]} for j in range(N // 2)]})

    with redis_endpoint(None) as ep:
        client = ep.client()
        gc.freeze()                     # what the launcher does after fork
        secret = b"0123456789abcdef0123"
        ctx = ProcessContext(ep.url, "L", "large", {}, secret)
        floor = gc.get_freeze_count()
        counts, runs_ok = [], True
        for i in range(12):
            run = f"r{i}"
            client.set(keys.RunKeys(run).protocol, RunSealer(secret, run).seal(b"spec", spec_blob(i)))
            spec = ctx.spec(run)
            runs_ok &= spec["run"] == i and ctx.spec(run) is spec
            counts.append(gc.get_freeze_count() - floor)
            del spec
        print(json.dumps({"counts": counts, "runs_ok": runs_ok, "slack": FROZEN_SLACK_OBJECTS,
                          "cached": list(ctx._specs), "gc_enabled": gc.isenabled()}))
""")


def _run(kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_specs_are_frozen_once_loaded_and_freed_when_evicted() -> None:
    got = _run("acyclic")
    counts = got["counts"]
    assert got["runs_ok"] and got["gc_enabled"]
    assert got["cached"] == ["r10", "r11"]                 # two runs' specs are kept, older ones evicted
    one = counts[0]
    assert one >= 30_000                                  # the loaded spec's containers are frozen
    # two specs frozen at a time, however many runs the process served
    assert max(counts[1:]) <= 2 * one + 5_000


def test_evicted_specs_in_reference_cycles_do_not_accumulate() -> None:
    got = _run("cyclic")
    counts = got["counts"]
    assert got["runs_ok"] and got["gc_enabled"]
    one = counts[0]
    # frozen cycles are re-collected once the frozen count outgrows the live specs by the slack
    assert max(counts) <= 3 * one + got["slack"] + 5_000
    assert counts[-1] < 12 * one
