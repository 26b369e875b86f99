"""A static protocol's decisions on one plan, compiled once: what every engine looks up per task.

On a static plan each worker runs its planned sequence, so every decision is a
function of the plan: when task ``i`` runs on its worker, the tasks that ran there
before are its sequence's prefix.  :func:`base_tables` derives the base
:class:`~planning.protocol.base.WorkerProtocol`'s rules with array operations over
the workflow's edges (100k-task plans compile in a fraction of a second);
:func:`hook_tables` asks a subclass's hooks once per task, in each worker's order.
A test checks the two agree task by task on the base protocol.

Downstream decisions are compiled per child: a static protocol says for each child
where it runs, whichever of its siblings became ready at the same time.  A protocol
whose decisions depend on the run is a :class:`~planning.protocol.dynamic.DynamicProtocol`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from planning.assignment import Placement
from planning.protocol.decisions import Invocation
from planning.topology import segments


class Later:
    """A table built on first use (by ``make()``): readers that do not need it do not pay for it."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


class _Table:
    """A field of :class:`DecisionTables`: given, or built once on first read from its :class:`Later`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, tables: "DecisionTables | None", owner: type | None = None) -> Any:
        if tables is None:
            return self
        value = tables.__dict__[self.name] = tables._later.pop(self.name).make()
        return value


class DecisionTables:
    """Per-task decisions over the workflow's topological positions (read-only for every engine).

    * ``fetch[i]``: bytes of each input fetched from storage, in parent order,
      ``local[i]`` the parents read from this worker's memory and ``fetched[i][k]``
      whether its ``k``-th parent's output is fetched (``handle_inputs``);
      ``fetch_sized[i]`` the fetches that move bytes;
    * ``profile[i]``: the profile the task executes on (``handle_execution``);
    * ``store[i]``, ``out_bytes[i]``: whether the output is stored, and its size
      (``handle_output``);
    * ``downstream[i]``: per child, ascending, ``(position, runs here, its worker,
      starts that worker)`` (``handle_downstream``);
    * ``initial``: the roots' invocations; ``worker[i]``: each task's worker;
      ``sequence``: each worker's task positions in order; ``worker_profile``: each
      worker's profile; ``other_profile``: whether any task executes on another profile
      than its worker's; ``placement``: the assignment they come from; ``warm_starts``: workers
      started without a task, seconds after the run's start (``warm_starts()``; their first
      task only notifies them).

    A field may be given as :class:`Later`: the planner's schedule reads only
    ``store``, ``fetched`` and ``other_profile``, so the array builder leaves the rest
    to the simulator's first read.
    """

    FIELDS = ("worker", "profile", "fetch", "fetch_sized", "local", "fetched", "store", "out_bytes", "downstream",
              "initial", "sequence", "worker_profile", "other_profile", "placement", "warm_starts")
    worker: list[str] = _Table()                                   # type: ignore[assignment]
    profile: list[str] = _Table()                                  # type: ignore[assignment]
    fetch: list[list[float]] = _Table()                            # type: ignore[assignment]
    fetch_sized: list[list[float]] = _Table()                      # type: ignore[assignment]
    local: list[list[int]] = _Table()                              # type: ignore[assignment]
    fetched: list[list[bool]] = _Table()                           # type: ignore[assignment]
    store: list[bool] = _Table()                                   # type: ignore[assignment]
    out_bytes: list[float] = _Table()                              # type: ignore[assignment]
    downstream: list[list[tuple[int, bool, str, bool]]] = _Table()  # type: ignore[assignment]
    initial: list[Invocation] = _Table()                           # type: ignore[assignment]
    sequence: dict[str, list[int]] = _Table()                      # type: ignore[assignment]
    worker_profile: dict[str, str] = _Table()                      # type: ignore[assignment]
    other_profile: bool = _Table()                                 # type: ignore[assignment]
    placement: Placement = _Table()                                # type: ignore[assignment]
    warm_starts: dict[str, float] = _Table()                       # type: ignore[assignment]

    def __init__(self, **fields: Any) -> None:
        missing = set(self.FIELDS) - set(fields)
        if missing or len(fields) != len(self.FIELDS):
            raise TypeError(f"DecisionTables needs exactly {', '.join(self.FIELDS)}")
        self._later: dict[str, Later] = {}
        for name, value in fields.items():
            if isinstance(value, Later):
                self._later[name] = value
            else:
                self.__dict__[name] = value

    def build_all(self) -> "DecisionTables":
        """Build every field not built yet (e.g. before forking processes that all read them)."""
        for name in list(self._later):
            getattr(self, name)
        return self

    def _fields(self) -> dict[str, Any]:
        """Every field as given: values, or the :class:`Later` not built yet."""
        return {name: self.__dict__[name] if name in self.__dict__ else self._later[name] for name in self.FIELDS}

    def staged(self, stage_in: np.ndarray, stage_out: np.ndarray) -> "DecisionTables":
        """A copy with staged bytes: ``stage_in[i]`` fetched before task ``i``, ``stage_out[i]`` stored after it.

        For replays of real executions (the ``recorded`` plan): a workflow system stages
        a task's external inputs before it and everything it writes after it.
        """
        fetch, sized = list(self.fetch), list(self.fetch_sized)
        store, out = list(self.store), list(self.out_bytes)
        for i in np.flatnonzero(stage_in > 0).tolist():
            fetch[i] = [*fetch[i], float(stage_in[i])]
            sized[i] = [*sized[i], float(stage_in[i])]
        for i in np.flatnonzero(stage_out > 0).tolist():
            store[i] = True
            out[i] = max(out[i], float(stage_out[i]))
        return DecisionTables(**{**self._fields(), "fetch": fetch, "fetch_sized": sized, "store": store,
                                 "out_bytes": out})


def _sized(fetch: list[list[float]]) -> list[list[float]]:
    """The fetches without empty inputs (nothing to move): what goes through storage."""
    return [f if 0.0 not in f else [b for b in f if b > 0] for f in fetch]


def base_tables(protocol) -> DecisionTables:
    """The base protocol's rules, vectorised over the edges (O(n + e), mostly numpy).

    A parent planned on the task's own worker ran before it there (the sequence is
    consistent with the dependencies, or the run stalls), so its output is local;
    every other in-edge is fetched.  An output is stored when a child is planned
    elsewhere, or for a sink.  A child planned here runs here; another is notified,
    or started when it opens its worker's sequence.  Only what the planner's
    schedule reads is built at once.
    """
    topology = protocol.topology
    placement = protocol.placement()
    n = topology.n
    code = placement.worker_code
    names = np.asarray(placement.workers, dtype=object)
    parent, child, nbytes = topology.edge_parent, topology.edge_child, topology.edge_bytes
    elsewhere = code[parent] != code[child]
    stored = np.bincount(parent[elsewhere], minlength=n) > 0
    first = placement.first
    warm = protocol.warm_starts()
    if warm:     # a pre-warmed worker is started by the engine, not by its first task
        first = first & ~np.array([w in warm for w in placement.workers], dtype=bool)[code]
    worker_profile = dict(protocol.worker_profile)
    default = next(iter(worker_profile.values()), "")
    by_worker = {w: worker_profile.get(w, default) for w in placement.workers}

    def fetch() -> list[list[float]]:
        return segments(nbytes[elsewhere].tolist(), np.bincount(child[elsewhere], minlength=n))

    def downstream() -> list[list[tuple[int, bool, str, bool]]]:
        by_parent = topology.edge_by_parent
        kid = child[by_parent]
        rows = list(zip(kid.tolist(), (~elsewhere[by_parent]).tolist(), names[code[kid]].tolist(),
                        first[kid].tolist()))
        return segments(rows, topology.out_degree)

    def initial() -> list[Invocation]:
        ids, worker = topology.ids, tables.worker
        return [Invocation(worker[r], ids[r], bool(first[r])) for r in topology.roots]

    tables = DecisionTables(
        worker=Later(placement.worker_names),
        profile=Later(lambda: [by_worker[w] for w in tables.worker]),
        fetch=Later(fetch), fetch_sized=Later(lambda: _sized(tables.fetch)),
        local=Later(lambda: segments(parent[~elsewhere].tolist(), np.bincount(child[~elsewhere], minlength=n))),
        fetched=segments(elsewhere.tolist(), topology.indegree),
        store=(stored | (topology.out_degree == 0)).tolist(), out_bytes=Later(topology.out_bytes.tolist),
        downstream=Later(downstream), initial=Later(initial), sequence=placement.sequence,
        worker_profile=by_worker, other_profile=False, placement=placement, warm_starts=warm)
    return tables


def hook_tables(protocol) -> DecisionTables:
    """A subclass's decisions, asked once per task in each worker's planned order.

    ``handle_inputs`` sees the tasks this worker ran before (its sequence's prefix);
    ``handle_downstream`` is asked with every child ready, and its answer is kept per child.
    """
    topology = protocol.topology
    placement = protocol.placement()
    ids, index, n = topology.ids, topology.index, topology.n
    worker = placement.worker_names()
    profile, fetch, local = [""] * n, [[] for _ in range(n)], [[] for _ in range(n)]
    store, out_bytes = [False] * n, [0.0] * n
    downstream: list[list[tuple[int, bool, str, bool]]] = [[] for _ in range(n)]
    for w, seq in placement.sequence.items():
        ran: set[str] = set()
        for i in seq:
            t = ids[i]
            inputs = protocol.handle_inputs(t, w, ran)
            fetch[i] = [float(f.nbytes) for f in inputs.fetch]
            local[i] = [index[p] for p in inputs.local]
            profile[i] = protocol.handle_execution(t, w).profile
            out = protocol.handle_output(t, w)
            store[i], out_bytes[i] = bool(out.store), float(out.nbytes)
            ran.add(t)
            decision = protocol.handle_downstream(t, w, protocol.children(t))
            rows = [(index[c], True, w, False) for c in decision.run_here]
            rows += [(index[v.task], False, v.worker, bool(v.start)) for v in decision.invocations]
            downstream[i] = sorted(rows)
    worker_profile = {w: protocol.profile_of(w) for w in placement.workers}
    fetched = []
    for ps, here in zip(topology.parents, local):
        mine = set(here)
        fetched.append([p not in mine for p in ps])
    return DecisionTables(worker=worker, profile=profile, fetch=fetch, fetch_sized=_sized(fetch), local=local,
                          fetched=fetched, store=store, out_bytes=out_bytes, downstream=downstream,
                          initial=list(protocol.initial_invocations()), sequence=placement.sequence,
                          worker_profile=worker_profile,
                          other_profile=any(p != worker_profile[w] for p, w in zip(profile, worker)),
                          placement=placement, warm_starts=protocol.warm_starts())
