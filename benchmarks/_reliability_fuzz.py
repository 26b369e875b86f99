"""The fuzzed-input part of the reliability benchmark (``bench_reliability.py``): planlab's ``main`` on hostile input.

WfFormat files, configs and command lines built by ``tests/fuzz_inputs.py`` go, one at a
time, through ``planlab``'s ``main`` in a forked child process with a limit per input, so
an input that hangs is counted and the child replaced, not the benchmark stuck.  Counted:
raw tracebacks, internal errors (exit 1), hangs, exit 0 on surely invalid input, and
refusals whose error is more than one line.  A module of its own so the benchmark's main
module stays about the kill, loss, soak and injection trials.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))   # the builders are the test suite's

FUZZ_TIMEOUT_S = 30.0


def _fuzz_child(conn, workdir: str) -> None:
    from experiments.cli import main

    while True:
        case = conn.recv()
        if case is None:
            return
        argv = [a.replace("{dir}", workdir) for a in case.argv]
        for name, text in case.files.items():
            Path(workdir, name).write_text(text)
        err = io.StringIO()
        escaped = None
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except BaseException as exc:  # noqa: BLE001 - an exception escaping main is a raw traceback
            code, escaped = -1, f"{type(exc).__name__}: {exc}"
        conn.send((code, err.getvalue()[-2000:], escaped))


def bench_fuzz(n: int, seed: int) -> dict[str, Any]:
    from fuzz_inputs import random_case

    rng = random.Random(seed)
    ctx = multiprocessing.get_context("fork")
    counts = {"inputs": 0, "refused": 0, "accepted": 0, "raw_tracebacks": 0, "internal_errors": 0,
              "hangs": 0, "exit0_on_invalid": 0, "multi_line_errors": 0, "surely_invalid": 0}
    examples: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="planlab-fuzz-") as workdir:
        child = parent = None

        def spawn():
            nonlocal child, parent
            parent, theirs = ctx.Pipe()
            child = ctx.Process(target=_fuzz_child, args=(theirs, workdir), daemon=True)
            child.start()

        spawn()
        for _ in range(n):
            case = random_case(rng, workdir)
            counts["inputs"] += 1
            counts["surely_invalid"] += case.invalid
            parent.send(case)
            if not parent.poll(FUZZ_TIMEOUT_S):
                counts["hangs"] += 1
                examples.setdefault("hangs", []).append(case.label)
                child.kill()
                child.join()
                spawn()
                continue
            code, err, escaped = parent.recv()
            if escaped or "Traceback" in err:
                counts["raw_tracebacks"] += 1
                examples.setdefault("raw_tracebacks", []).append(f"{case.label}: {escaped or err[-200:]}")
            elif code == 1:
                counts["internal_errors"] += 1
                examples.setdefault("internal_errors", []).append(f"{case.label}: {err.strip()[:200]}")
            if code == 0:
                counts["accepted"] += 1
                if case.invalid:
                    counts["exit0_on_invalid"] += 1
                    examples.setdefault("exit0_on_invalid", []).append(case.label)
            elif code == 2:
                counts["refused"] += 1
                if len(err.strip().splitlines()) != 1:
                    counts["multi_line_errors"] += 1
                    examples.setdefault("multi_line_errors", []).append(f"{case.label}: {err.strip()[:200]}")
        parent.send(None)
        child.join(10)
    return {**counts, "examples": {k: v[:10] for k, v in examples.items()}}

