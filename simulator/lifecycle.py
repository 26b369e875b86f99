"""A simulated worker's life around its tasks: start-up (cold, warm, or through the host's launcher), stop, keep-alive.

On a host without shared cores (``Platform.host_cores`` infinite) a start-up is
arithmetic: a warm start when an idle process of the profile stopped less than
``keep_alive_s`` ago, else a cold one.  On a shared host (:mod:`simulator.host`)
start requests queue at the launcher, which forks or reuses processes one at a
time, and start-ups and executions are CPU work shared max-min fairly - on a
cluster, each on the cores of the node its worker was placed on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from planning.schedule.startups import take_idle
from simulator.loop import Coroutine, wake

if TYPE_CHECKING:  # pragma: no cover
    from simulator.engine import Run


def started(run: "Run", profile: str, start: float) -> tuple[bool, float, float]:
    """A worker of ``profile`` starts at ``start`` (no shared host): (warm, its start-up seconds, when it is ready)."""
    if take_warm(run, profile, start):
        startup = run.platform.warm_start_s * run.warm.next()
        return True, startup, start + startup
    startup = run.platform.cold_start_s * run.cold.next()
    return False, startup, start + startup


def stopped(run: "Run", w: str, profile: str, warm: bool, start: float, startup: float, stop: float,
            busy: float, tasks: int, ran: list[int]) -> None:
    """Record a worker that ran its last task (``ran``: its tasks in order); its process idles (warm) from ``stop``."""
    run.completed += tasks
    # one row (engine.WORKER_FIELDS' order), made columns once the run ends: one append instead of nine
    run.worker_rows.append((w, profile, not warm, start, start + startup, stop, busy, tasks, startup))
    run.ran_by.append(ran)
    nodes = run.nodes
    if nodes is None:
        run.idle.setdefault(profile, []).append(stop)
        return
    nodes.release(w, run.model.cpus[profile], run.model.memory_mb[profile])   # its process idles on its node
    run.idle.setdefault(idle_key(profile, nodes.worker_node[w]), []).append(stop)


def idle_key(profile: str, node: int) -> str:
    """Where a cluster keeps the idle processes of ``profile`` on node ``node`` (a worker reuses its node's only)."""
    return f"{profile}@{node}"


def host_start(run: "Run", profile: str, start: float, me: Coroutine, worker: str) -> Iterator[float | None]:
    """A worker's start on a shared host: (warm, its start-up seconds, when it is ready to run its first task).

    Its start request waits its turn at the launcher (:func:`launcher`), which
    gives it an idle process of its profile (warm) or forks one (cold); then its
    start-up is single-threaded CPU work inside the worker's CPU limit, plus the
    loading of the run's specification (``spec_load_s`` and ``spec_load_s_per_task``
    per task of the workflow) when the process serves this run for the first time.
    The start-up terms are seconds on one whole core: a 0.5-CPU worker takes twice
    as long (measured: cold starts of 0.5-CPU workers took 2x those of 1- and 2-CPU
    ones, in the profile phase and in the fidelity benchmark's runs alike).

    On a cluster (``Platform.nodes``) the worker is placed on a node when it asks
    (:class:`simulator.host.NodeCpus`) and takes an idle process of that node only.
    """
    platform, env = run.platform, run.env
    if start > env._now:
        yield start - env._now
    key = profile
    if run.nodes is not None:
        model = run.model
        key = idle_key(profile, run.nodes.place(worker, profile, model.cpus[profile], model.memory_mb[profile], me))
    run.launch_queue.append((key, me))
    if run.launcher_idle:      # served now, before anything else happens at this instant
        run.launcher_idle = False
        run.launcher.value = None
        run.launcher.resume()
    warm, new_to_run = yield
    seconds = platform.warm_start_s * run.warm.next() if warm else platform.cold_start_s * run.cold.next()
    if new_to_run:
        seconds += platform.spec_load_s + platform.spec_load_s_per_task * run.model.n
    cap = min(run.model.cpus[profile], 1.0, run.cpu.cores_for(me))
    run.cpu.run(seconds, cap, me)     # ``seconds`` of one core's work, at up to ``cap`` cores
    ready = yield
    return warm, ready - start, ready


def launcher(run: "Run", me: Coroutine) -> Iterator[float | None]:
    """The launcher: start requests, one at a time in arrival order (FACTS: one loop forks every worker).

    Whether a request gets an idle process is decided when the launcher gets to
    it, as the real one does, so a burst of starts reuses processes that the
    burst's first workers free meanwhile.  Its own work (``launch_s``, plus
    ``process_start_s`` for a fork) is single-threaded CPU work on the shared host:
    it slows down when the host is busy, as the real launcher process does.
    """
    platform, queue = run.platform, run.launch_queue
    while True:
        if not queue:
            run.launcher_idle = True
            yield               # host_start resumes us with a new request
            continue
        profile, worker = queue.popleft()
        warm = take_warm(run, profile, run.env._now)
        # a process's first logical worker of this run loads the run's specification first
        new_to_run = not warm or took_from_pool(run, profile)
        busy = platform.launch_s + (0.0 if warm else platform.process_start_s)
        if busy > 0:
            run.cpu.run(busy, 1.0, me)
            yield
        wake(run.env, worker, (warm, new_to_run), 0.0)


def on_cpu(run: "Run", seconds: float, profile: str, parallelism: float, me: Coroutine) -> Iterator[float | None]:
    """Run ``seconds`` (as measured alone on ``profile``) of CPU work on the shared host; returns its end."""
    cap = min(run.model.cpus[profile], parallelism, run.cpu.cores_for(me))
    run.cpu.run(seconds * cap, cap, me)
    end = yield
    return end


def took_from_pool(run: "Run", profile: str) -> bool:
    """Whether the idle process just taken (the top of the stack) was one of the warm pool's."""
    pooled = run.from_pool.get(profile, 0)
    if pooled > len(run.idle.get(profile, ())):
        run.from_pool[profile] = pooled - 1
        return True
    return False


def take_warm(run: "Run", profile: str, t: float) -> bool:
    """Reuse the most recently stopped idle process of ``profile`` if it is still warm at ``t``.

    The rule is the plan's too (:func:`planning.schedule.startups.take_idle`).
    """
    stack = run.idle.get(profile)
    if not stack:
        return False
    taken = take_idle(stack, t, run.platform.keep_alive_s)
    if taken is None:
        stack.clear()      # older processes stopped even earlier: all cold now
        run.from_pool.pop(profile, None)
    return bool(taken)
