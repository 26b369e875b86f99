"""Peers run on the same DAGs as planlab, for the benchmarks' side-by-side figures.

* :func:`dask_threaded_s`: dask's threaded scheduler (``dask.threaded.get``) on the
  graph ``bench_executor.py`` gives dask.distributed - the cheapest way dask runs a graph.
* :func:`ray_s`: the same graph as Ray tasks (one ``@ray.remote`` call per task, each
  taking its parents' object refs), in a local Ray instance of this machine's cores.
* :func:`plain_simpy_s`: a plain SimPy model of a workflow - one process per task that
  waits for its parents' events, holds for its duration and fires its own - the model
  a researcher would write by hand, against which planlab's simulator (workers,
  start-ups, transfers, the host) is timed.

Each returns the median wall seconds of ``repeats`` runs after one warm-up.  The
functions import their peer lazily, so ``bench_executor.py --no-dask`` and a machine
without Ray still run.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from _timing import timed


def _median_s(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """One warm-up call, then :func:`_timing.timed`: (median seconds, the value)."""
    run()
    seconds, _, value = timed(run, max(1, int(repeats)))
    return seconds, value


def dask_threaded_s(graph: Mapping[str, tuple], sink: str, repeats: int = 5) -> tuple[float, Any]:
    """(median seconds, the sink's value) of ``graph`` on dask's threaded scheduler."""
    import dask.threaded

    return _median_s(lambda: dask.threaded.get(dict(graph), sink), repeats)


def ray_s(graph: Mapping[str, tuple], order: Sequence[str], sink: str, repeats: int = 5,
          num_cpus: int | None = None) -> tuple[float, Any]:
    """(median seconds, the sink's value) of ``graph`` as Ray tasks, ``order`` topological.

    Starts a local Ray instance when none is running (and shuts it down after).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)   # a new instance of its own, never a cluster found running
    try:
        remote = {}

        def submit() -> Any:
            refs: dict[str, Any] = {}
            for key in order:
                fn, *args = graph[key]
                call = remote.get(fn)
                if call is None:
                    call = remote[fn] = ray.remote(fn)
                refs[key] = call.remote(*[refs.get(a, a) if isinstance(a, str) else a for a in args])
            return ray.get(refs[sink])

        return _median_s(submit, repeats)
    finally:
        if started:
            ray.shutdown()


def plain_simpy_s(parents: Mapping[str, Sequence[str]], durations: Mapping[str, float],
                  repeats: int = 5) -> tuple[float, float]:
    """(median seconds to simulate, the simulated makespan) of a workflow as one SimPy process per task."""
    import simpy

    def run() -> float:
        env = simpy.Environment()
        done = {t: env.event() for t in durations}

        def task(t: str):
            waits = [done[p] for p in parents.get(t, ())]
            if waits:
                yield env.all_of(waits)
            yield env.timeout(durations[t])
            done[t].succeed()

        for t in durations:
            env.process(task(t))
        env.run()
        return float(env.now)

    return _median_s(run, repeats)


def bench_other_peers(rows: list[dict], workflows: list[Any], graphs: list[Mapping[str, tuple]], repeats: int,
                      max_tasks: int) -> None:
    """dask's threaded scheduler and Ray tasks on ``bench_executor.py``'s DAGs, into its rows.

    Adds ``dask_threaded_ms_per_task`` and ``ray_ms_per_task`` to each row of a DAG of at most
    ``max_tasks`` tasks (rows of one DAG share its time); a peer that is not installed is left out.
    """
    peers = {"dask_threaded": lambda g, order, sink: dask_threaded_s(g, sink, repeats)[0],
             "ray": lambda g, order, sink: ray_s(g, order, sink, repeats)[0]}
    for name, run in peers.items():
        done: dict[int, float] = {}
        for row, wf, graph in zip(rows, workflows, graphs):
            if len(wf) > max_tasks:
                continue
            try:
                if id(wf) not in done:
                    done[id(wf)] = run(graph, wf.topological_order(), wf.sinks()[0])
            except ImportError:
                break        # that peer is not installed
            row[f"{name}_ms_per_task"] = done[id(wf)] / len(wf) * 1e3
            print(f"{row['dag']:>7} {len(wf):>6} tasks {row['placement']:<22} {name} "
                  f"{row[f'{name}_ms_per_task']:.3f} ms/task", flush=True)
