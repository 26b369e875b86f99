"""Small workflows of sleeping tasks for the live view's tests: they last a few seconds and need no CPU.

``planlab execute tests/live_workflows.py:sleepy ...`` runs one; the sleeps make the run long
enough for a page to see tasks running, while leaving the machine's two cores to the test.
"""

from __future__ import annotations

import time

from planning import task

#: Seconds each task sleeps.
NAP_S = 1.5


@task(runtime_s=NAP_S, output_bytes=16)
def nap(i: int, after: list) -> int:
    time.sleep(NAP_S)
    return i


@task(runtime_s=NAP_S, output_bytes=16)
def gather(parts: list) -> int:
    time.sleep(NAP_S)
    return sum(parts)


def sleepy():
    """A fork-join of sleeping tasks, three deep (about 4-5 s end to end)."""
    first = nap(0, [])
    middle = [nap(i, [first]) for i in range(1, 4)]
    return gather(middle)


@task(runtime_s=0.1, output_bytes=16)
def explode(after: int) -> int:
    raise ValueError(f"boom after {after}")


def broken():
    """A sleeping task, then one that raises (not a transient error: no retry)."""
    return explode(nap(0, []))
