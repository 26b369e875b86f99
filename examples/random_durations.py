"""A ``@task`` workflow whose tasks take seeded random times: half burn CPU, half sleep.

    planlab inspect examples/random_durations.py:workflow

Layered like a real analysis: one ``prepare`` task, ``stages`` stages of ``width``
tasks (each depends on one or two tasks of the stage before), and one ``gather``
task.  Every middle task is either ``crunch`` (burns a fixed number of loop
iterations on one core, so it slows down when tasks share the host's cores) or
``wait`` (sleeps, like a task waiting on I/O or a remote service: it does not
compete for CPU).  Each task's time is drawn once, when the workflow is built, from
a lognormal around ``median_s`` with log-sd ``sigma`` (numpy ``Generator`` seeded by
``seed``), and passed to the task as an argument: the same arguments build the same
workflow, and every run of it does the same work.  The benchmark
``benchmarks/bench_fidelity.py`` uses it as the workflow with random task durations.
"""

from __future__ import annotations

import time

import numpy as np

from planning import build_workflow, task
from planning.sources.kernels import SPIN_UNITS_PER_S, spin
from planning.workflow import Workflow


@task(runtime_s=0.002, output_bytes=16)
def prepare(seed: int) -> int:
    return spin(10_000, seed)


@task(runtime_s=0.05, output_bytes=16)
def crunch(seconds: float, *inputs: int) -> int:
    """Burn about ``seconds`` of one core (a fixed amount of work, not a fixed wall time)."""
    return spin(max(0, int(seconds * SPIN_UNITS_PER_S)), *inputs)


@task(runtime_s=0.05, output_bytes=16)
def wait(seconds: float, *inputs: int) -> int:
    """Sleep ``seconds`` (wall time, no CPU), then fold the inputs into the result."""
    time.sleep(seconds)
    return spin(0, *inputs)


@task(runtime_s=0.002, output_bytes=16)
def gather(*parts: int) -> int:
    return spin(1_000, *parts)


def random_durations(stages: int = 3, width: int = 6, median_s: float = 0.05, sigma: float = 0.6,
                     seed: int = 0) -> Workflow:
    """``2 + stages * width`` tasks; see the module docstring.  Cost: O(stages * width)."""
    if stages < 1 or width < 1 or median_s < 0 or sigma < 0:
        raise ValueError("stages and width must be >= 1, median_s and sigma >= 0")
    rng = np.random.default_rng(seed)
    previous = [prepare(seed)]
    for stage in range(stages):
        current = []
        for j in range(width):
            seconds = float(median_s * rng.lognormal(0.0, sigma))
            parents = {j % len(previous)}
            if rng.random() < 0.5:
                parents.add(int(rng.integers(0, len(previous))))
            kind = crunch if rng.random() < 0.5 else wait
            current.append(kind.named(f"s{stage}-{kind.kind}-{j}")(round(seconds, 4),
                                                                    *(previous[p] for p in sorted(parents))))
        previous = current
    return build_workflow(gather(*previous), name=f"random_durations-{stages}x{width}-s{seed}")


def workflow() -> Workflow:
    """The benchmark's default: 20 tasks (3 stages of 6), seed 0."""
    return random_durations()
