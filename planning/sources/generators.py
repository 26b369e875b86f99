"""Workflow generators: named, parameterised, executable DAG shapes.

Every generator returns a validated :class:`~planning.workflow.Workflow` whose
tasks carry real code from :mod:`planning.sources.kernels` (``func`` plus ``args`` with
:class:`~planning.tasks.Ref` placeholders) and hints: ``runtime_s`` is what
the kernel takes on one core of the development machine (see the rates in
:mod:`planning.sources.kernels`), ``output_bytes`` the size of the pickled result.

Generators are registered by name in :data:`GENERATORS`; add your own with
:func:`register_generator`, then refer to it as ``gen:NAME:k=v,...`` anywhere a
workflow is accepted (:func:`planning.sources.generator_specs.parse_generator_spec`,
:func:`planning.sources.loading.load_workflow`).

Defaults are small on purpose: running every generator for real takes a few
seconds (``fan_out`` and ``deep_chain`` are large but their tasks are near
no-ops).  Building costs O(n + e); ``random_layered`` builds 10,000 tasks in well
under a second.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from planning.errors import WorkflowError
from planning.names import did_you_mean
from planning.sources import kernels
from planning.tasks import Ref, Task, iter_refs
from planning.workflow import Workflow

GeneratorFn = Callable[..., Workflow]
G = TypeVar("G", bound=GeneratorFn)

#: Generator name -> function.  Add entries with :func:`register_generator`.
GENERATORS: dict[str, GeneratorFn] = {}

#: Rough pickled size of a small int / float result (header + payload).
SMALL_RESULT_BYTES = 16
#: Rough pickled overhead of a numpy array besides its data.
ARRAY_OVERHEAD_BYTES = 160


def register_generator(name: str | GeneratorFn | None = None, *, replace: bool = False):
    """Register a generator under ``name`` (default: the function's name).

    Use bare (``@register_generator``) or with a name
    (``@register_generator("my_shape")``).  A generator is a function whose
    parameters all have defaults (their types drive the coercion of
    ``gen:NAME:k=v`` specs) and which returns a :class:`Workflow`.  Registering a
    taken name raises unless ``replace=True``.
    """
    def wrap(fn: G, key: str | None = None) -> G:
        key = key or fn.__name__
        if not replace and key in GENERATORS and GENERATORS[key] is not fn:
            raise WorkflowError(f"a generator named {key!r} is already registered",
                                "choose another name or pass replace=True")
        missing = [p.name for p in inspect.signature(fn).parameters.values()
                   if p.default is inspect.Parameter.empty
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            raise WorkflowError(f"generator {key!r}: parameters {missing} have no default",
                                "give every generator parameter a default value")
        GENERATORS[key] = fn
        return fn

    if callable(name):
        return wrap(name)
    return lambda fn: wrap(fn, name)


def generate(name: str, **params: Any) -> Workflow:
    """Build the workflow of generator ``name`` with ``params`` (Python values)."""
    fn = lookup_generator(name)
    valid = generator_parameters(fn)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise WorkflowError(f"generator {name!r} has no parameter(s) {', '.join(unknown)}",
                            f"valid parameters: {describe_parameters(valid)}")
    return fn(**params)


def list_generators() -> dict[str, dict[str, Any]]:
    """Each registered generator with its parameters and their defaults."""
    return {name: {k: p.default for k, p in generator_parameters(fn).items()} for name, fn in GENERATORS.items()}


# ---------------------------------------------------------------- lookup
def lookup_generator(name: str) -> GeneratorFn:
    """The generator registered as ``name``; an unknown name is one error with the closest names."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise WorkflowError(f"unknown generator {name!r}{did_you_mean(name, GENERATORS)}",
                            f"known generators: {', '.join(sorted(GENERATORS))}") from None


def generator_parameters(fn: GeneratorFn) -> dict[str, inspect.Parameter]:
    """A generator's named parameters (their defaults and annotations say what a spec may set)."""
    return {p.name: p for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def describe_parameters(params: Mapping[str, inspect.Parameter]) -> str:
    """``k=default, ...`` for error messages."""
    return ", ".join(f"{k}={p.default!r}" for k, p in params.items()) or "(none)"


#: Largest workflow a generator builds (tasks), and largest value of any size parameter: beyond this
#: a generator would run for minutes or exhaust memory, which is never what a typo meant.
MAX_TASKS = 1_000_000
#: Largest ``units``/``rounds`` of work per task (spin units, matrix rounds).
MAX_WORK = 10**9
#: Largest matrix side (``size``, ``block_size``): a 10k x 10k float matrix is 800 MB.
MAX_MATRIX = 10_000
#: Seeds are 0 ... 2**63 - 1 (numpy refuses negative ones).
MAX_SEED = 2**63 - 1


def _check(name: str, value: Any, minimum: float, gen: str, maximum: float = MAX_TASKS) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value) or not minimum <= value <= maximum):
        top = f"{maximum:,}" if isinstance(maximum, int) else f"{maximum:g}"
        raise WorkflowError(f"generator {gen!r}: {name} must be a number between {minimum} and {top}, "
                            f"got {value!r}", f"set {minimum} <= {name} <= {top} (a documented limit)")


def _check_tasks(gen: str, n_tasks: int) -> None:
    if n_tasks > MAX_TASKS:
        raise WorkflowError(f"generator {gen!r} would build {n_tasks:,} tasks, more than the limit of {MAX_TASKS:,}",
                            "use smaller parameters")


def _spin(task_id: str, units: int, *inputs: Any, kind: str = "spin") -> Task:
    return Task(task_id, kind, runtime_s=kernels.spin_seconds(units), output_bytes=SMALL_RESULT_BYTES,
                func=kernels.spin, args=(units, *inputs))


def _noop(task_id: str, *inputs: Any) -> Task:
    return Task(task_id, "noop", runtime_s=kernels.CALL_OVERHEAD_S, output_bytes=SMALL_RESULT_BYTES,
                func=kernels.noop, args=inputs)


def _build(tasks: list[Task], name: str, gen: str, params: Mapping[str, Any]) -> Workflow:
    """Workflow from tasks whose parents are exactly the Refs in their arguments."""
    parents = {t.id: list(dict.fromkeys(iter_refs(t.args))) for t in tasks}
    return Workflow.from_tasks(tasks, parents, name=name,
                               metadata={"generator": gen, "params": dict(params)})


# ---------------------------------------------------------------- generators
@register_generator
def chain(length: int = 10, units: int = 20_000) -> Workflow:
    """``length`` :func:`~planning.sources.kernels.spin` tasks in a line (``t0 -> t1 -> ...``)."""
    _check("length", length, 1, "chain")
    _check("units", units, 0, "chain", MAX_WORK)
    tasks = [_spin("t0", units)]
    tasks += [_spin(f"t{i}", units, Ref(f"t{i - 1}")) for i in range(1, length)]
    return _build(tasks, f"chain-{length}", "chain", {"length": length, "units": units})


@register_generator
def fork_join(width: int = 8, depth: int = 1, units: int = 20_000) -> Workflow:
    """A root, then ``depth`` stages of ``width`` parallel tasks each closed by a join.

    Ids: ``fork``, ``s{stage}-w{j}``, ``s{stage}-join``.  Tasks: 1 + depth (width + 1).
    """
    _check("width", width, 1, "fork_join")
    _check("depth", depth, 1, "fork_join")
    _check("units", units, 0, "fork_join", MAX_WORK)
    _check_tasks("fork_join", 1 + depth * (width + 1))
    tasks = [_spin("fork", units)]
    upstream = "fork"
    for s in range(depth):
        workers = [_spin(f"s{s}-w{j}", units, Ref(upstream), j) for j in range(width)]
        tasks += workers
        upstream = f"s{s}-join"
        tasks.append(_spin(upstream, units, *(Ref(w.id) for w in workers)))
    return _build(tasks, f"fork_join-{width}x{depth}", "fork_join",
                  {"width": width, "depth": depth, "units": units})


@register_generator
def tree_reduction(leaves: int = 16, arity: int = 2, units: int = 20_000) -> Workflow:
    """``leaves`` independent tasks reduced ``arity`` at a time to one root.

    Ids: ``leaf-{i}``, then ``r{level}-{j}`` (level 1 reduces the leaves).
    Tasks: about leaves * arity / (arity - 1); depth 1 + ceil(log_arity(leaves)).
    """
    _check("leaves", leaves, 1, "tree_reduction")
    _check("arity", arity, 2, "tree_reduction")
    _check("units", units, 0, "tree_reduction", MAX_WORK)
    tasks = [_spin(f"leaf-{i}", units, i) for i in range(leaves)]
    level_ids = [t.id for t in tasks]
    level = 0
    while len(level_ids) > 1:
        level += 1
        groups = [level_ids[i:i + arity] for i in range(0, len(level_ids), arity)]
        reducers = [_spin(f"r{level}-{j}", units, *(Ref(p) for p in g)) for j, g in enumerate(groups)]
        tasks += reducers
        level_ids = [r.id for r in reducers]
    return _build(tasks, f"tree_reduction-{leaves}x{arity}", "tree_reduction",
                  {"leaves": leaves, "arity": arity, "units": units})


@register_generator
def gemm(blocks: int = 2, block_size: int = 64, seed: int = 0) -> Workflow:
    """Blocked ``C = A @ B`` over a ``blocks x blocks`` grid of ``block_size`` blocks.

    Tasks: make ``A-i-k`` and ``B-k-j`` (kind ``gemm_make``), multiply
    ``mul-i-j-k`` = A_ik B_kj (``gemm_multiply``), sum over k into ``C-i-j``
    (``gemm_add``), and ``C`` assembles the full matrix (``gemm_assemble``).
    2b^2 + b^3 + b^2 + 1 tasks; 2 b^3 block_size^3 flops in the multiplies.
    """
    _check("blocks", blocks, 1, "gemm")
    _check("seed", seed, 0, "gemm", MAX_SEED)
    _check("block_size", block_size, 1, "gemm", MAX_MATRIX)
    _check_tasks("gemm", 3 * blocks**2 + blocks**3 + 1)
    b, n = blocks, block_size
    block_bytes = n * n * 8 + ARRAY_OVERHEAD_BYTES
    make_s = kernels.make_block_seconds(n)
    tasks: list[Task] = []
    for name in ("A", "B"):
        for r in range(b):
            for c in range(b):
                block_seed = seed * 1_000_003 + (0 if name == "A" else 1) * 10_007 + r * b + c
                tasks.append(Task(f"{name}-{r}-{c}", "gemm_make", runtime_s=make_s, output_bytes=block_bytes,
                                  func=kernels.make_block, args=(n, block_seed)))
    for i in range(b):
        for j in range(b):
            for k in range(b):
                tasks.append(Task(f"mul-{i}-{j}-{k}", "gemm_multiply", runtime_s=kernels.matmul_seconds(n),
                                  output_bytes=block_bytes, func=kernels.multiply_blocks,
                                  args=(Ref(f"A-{i}-{k}"), Ref(f"B-{k}-{j}"))))
            tasks.append(Task(f"C-{i}-{j}", "gemm_add",
                              runtime_s=kernels.CALL_OVERHEAD_S + b * n * n * kernels.ELEMENT_PASS_S,
                              output_bytes=block_bytes, func=kernels.add_blocks,
                              args=tuple(Ref(f"mul-{i}-{j}-{k}") for k in range(b))))
    grid = [[Ref(f"C-{i}-{j}") for j in range(b)] for i in range(b)]
    tasks.append(Task("C", "gemm_assemble", runtime_s=kernels.CALL_OVERHEAD_S + b * b * n * n * kernels.ELEMENT_PASS_S,
                      output_bytes=b * b * n * n * 8 + ARRAY_OVERHEAD_BYTES, func=kernels.assemble_blocks,
                      args=(grid,)))
    return _build(tasks, f"gemm-{b}x{n}", "gemm", {"blocks": b, "block_size": n, "seed": seed})


@register_generator
def random_layered(tasks: int = 100, layers: int | None = None, seed: int = 0, max_parents: int = 3,
                   kinds: int = 5, runtime_median_s: float = 0.002, runtime_sigma: float = 1.0,
                   task_sigma: float = 0.25, output_median_bytes: float = 10_000.0,
                   output_sigma: float = 1.0) -> Workflow:
    """A seeded random layered DAG: ``tasks`` spread over ``layers`` (default ~sqrt(tasks)).

    Every layer has at least one task; every task of layer L >= 1 has a parent in
    layer L - 1 (so a task's level is its layer and the depth is ``layers``) and
    up to ``max_parents - 1`` more drawn uniformly from all earlier layers.
    Tasks belong to one of ``kinds`` kinds (``k0``, ``k1``...), each with its own
    median runtime and output size drawn from lognormals around
    ``runtime_median_s`` / ``output_median_bytes`` (log-sd ``runtime_sigma`` /
    ``output_sigma``); each task varies around its kind's median with log-sd
    ``task_sigma``, as runs of the same function do.  A task spins for its hinted
    runtime and returns a payload of its hinted size
    (:func:`~planning.sources.kernels.spin_payload`), so a real run moves real bytes.

    Same arguments, same workflow (numpy ``Generator`` seeded by ``seed``).
    Cost: O(tasks * max_parents) numpy draws plus the Workflow construction.
    """
    gen = "random_layered"
    params = {"tasks": tasks, "layers": layers, "seed": seed, "max_parents": max_parents, "kinds": kinds,
              "runtime_median_s": runtime_median_s, "runtime_sigma": runtime_sigma, "task_sigma": task_sigma,
              "output_median_bytes": output_median_bytes, "output_sigma": output_sigma}
    n, n_layers = _random_layered_sizes(params)
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n - n_layers, np.full(n_layers, 1.0 / n_layers)) + 1
    starts = np.concatenate(([0], np.cumsum(sizes)))           # layer L holds tasks starts[L]:starts[L+1]
    layer_of = np.repeat(np.arange(n_layers), sizes)
    kind_rt = runtime_median_s * rng.lognormal(0.0, runtime_sigma, kinds)
    kind_out = output_median_bytes * rng.lognormal(0.0, output_sigma, kinds)
    kind_of = rng.integers(0, kinds, n)
    runtime = kind_rt[kind_of] * rng.lognormal(0.0, task_sigma, n)
    out_bytes = np.maximum(8, np.rint(kind_out[kind_of] * rng.lognormal(0.0, task_sigma, n))).astype(np.int64)
    units = np.rint(np.maximum(runtime - kernels.CALL_OVERHEAD_S, 0.0) * kernels.SPIN_UNITS_PER_S).astype(np.int64)
    n_parents = rng.integers(1, max_parents + 1, n)
    # First parent: uniform in the previous layer; the others: uniform over all earlier tasks.
    prev_lo, prev_hi = starts[np.maximum(layer_of - 1, 0)], starts[layer_of]
    first = prev_lo + np.floor(rng.random(n) * (prev_hi - prev_lo)).astype(np.int64)
    extra = np.floor(rng.random((n, max(max_parents - 1, 0))) * prev_hi[:, None]).astype(np.int64)

    runtime_hint = kernels.CALL_OVERHEAD_S + units / kernels.SPIN_UNITS_PER_S
    first_task_of_layer1 = int(starts[1]) if n_layers > 1 else n
    task_list, parents = _layered_tasks(starts, layer_of, first, extra, n_parents, units, out_bytes, kind_of,
                                        runtime_hint, first_task_of_layer1)
    params.update(tasks=n, layers=n_layers)
    return Workflow.from_tasks(task_list, parents, name=f"random_layered-{n}-s{seed}",
                               metadata={"generator": gen, "params": params})


def _random_layered_sizes(params: Mapping[str, Any]) -> tuple[int, int]:
    """``random_layered``'s parameters checked against their limits: (tasks, layers)."""
    gen = "random_layered"
    _check("tasks", params["tasks"], 1, gen)
    _check("max_parents", params["max_parents"], 1, gen)
    _check("kinds", params["kinds"], 1, gen)
    _check("seed", params["seed"], 0, gen, MAX_SEED)
    for name, maximum in (("runtime_median_s", 86_400.0), ("runtime_sigma", 10.0), ("task_sigma", 10.0),
                          ("output_median_bytes", 2.0**34), ("output_sigma", 10.0)):
        _check(name, params[name], 0, gen, maximum)
    n = int(params["tasks"])
    n_layers = max(1, round(math.sqrt(n))) if params["layers"] is None else int(params["layers"])
    _check("layers", n_layers, 1, gen)
    if n_layers > n:
        raise WorkflowError(f"generator {gen!r}: layers ({n_layers}) > tasks ({n})", "use layers <= tasks")
    return n, n_layers


def _layered_tasks(starts: np.ndarray, layer_of: np.ndarray, first: np.ndarray, extra: np.ndarray,
                   n_parents: np.ndarray, units: np.ndarray, out_bytes: np.ndarray, kind_of: np.ndarray,
                   runtime_hint: np.ndarray, first_task_of_layer1: int) -> tuple[list[Task], dict[str, list[str]]]:
    """The tasks of a layered DAG and their parents, from the drawn arrays (Python lists: fast per task)."""
    starts_l = starts.tolist()
    ids = [f"L{layer}-t{i - starts_l[layer]}" for i, layer in enumerate(layer_of.tolist())]
    first_l, extra_l, np_l = first.tolist(), extra.tolist(), n_parents.tolist()
    units_l, out_l, kind_l = units.tolist(), out_bytes.tolist(), kind_of.tolist()
    runtime_l = runtime_hint.tolist()
    spin_payload = kernels.spin_payload
    task_list: list[Task] = []
    parents: dict[str, list[str]] = {}
    for i in range(len(ids)):
        if i < first_task_of_layer1:
            ps: list[int] = []
        else:
            ps = list(dict.fromkeys([first_l[i], *extra_l[i][:np_l[i] - 1]]))
        pids = [ids[p] for p in ps]
        parents[ids[i]] = pids
        task_list.append(Task(ids[i], f"k{kind_l[i]}", runtime_s=runtime_l[i], output_bytes=out_l[i],
                              func=spin_payload, args=(units_l[i], out_l[i], *map(Ref, pids))))
    return task_list, parents


@register_generator
def fan_out(width: int = 1000) -> Workflow:
    """One root ``src`` -> ``width`` near no-op tasks ``w{i}`` -> one ``sink``."""
    _check("width", width, 1, "fan_out")
    tasks = [_noop("src")]
    tasks += [_noop(f"w{i}", Ref("src"), i) for i in range(width)]
    tasks.append(_noop("sink", *(Ref(f"w{i}") for i in range(width))))
    return _build(tasks, f"fan_out-{width}", "fan_out", {"width": width})


@register_generator
def deep_chain(length: int = 1000) -> Workflow:
    """``length`` near no-op tasks in a line (``t0 -> ... -> t{length-1}``)."""
    _check("length", length, 1, "deep_chain")
    tasks = [_noop("t0")] + [_noop(f"t{i}", Ref(f"t{i - 1}")) for i in range(1, length)]
    return _build(tasks, f"deep_chain-{length}", "deep_chain", {"length": length})


#: Branch lengths of :func:`five_branches`: branch 0 is the critical path.
FIVE_BRANCH_LENGTHS = (5, 4, 3, 2, 1)


@register_generator
def five_branches(size: int = 200, rounds: int = 100, seed: int = 0) -> Workflow:
    """Five chains of 5, 4, 3, 2 and 1 :func:`~planning.sources.kernels.matrix_work` tasks into one sink.

    Ids ``b{branch}-t{step}``, sink ``sink`` (kind ``combine``).  All matrix tasks
    cost the same (2 * rounds * size^3 flops, about 0.05 s on one core with the defaults),
    so branch ``b0`` is the critical path and a planner can put the shorter
    branches on smaller, cheaper workers without delaying the sink.
    """
    _check("size", size, 1, "five_branches", MAX_MATRIX)
    _check("seed", seed, 0, "five_branches", MAX_SEED)
    _check("rounds", rounds, 0, "five_branches", MAX_WORK)
    runtime = kernels.matrix_work_seconds(size, rounds)
    tasks: list[Task] = []
    for b, length in enumerate(FIVE_BRANCH_LENGTHS):
        prev: Ref | None = None
        for step in range(length):
            tid = f"b{b}-t{step}"
            tasks.append(Task(tid, "matrix_work", runtime_s=runtime, output_bytes=SMALL_RESULT_BYTES,
                              memory_mb=max(1.0, 4 * size * size * 8 / 2 ** 20),
                              func=kernels.matrix_work, args=(prev, size, rounds, seed * 101 + b * 10 + step)))
            prev = Ref(tid)
    last = [Ref(f"b{b}-t{length - 1}") for b, length in enumerate(FIVE_BRANCH_LENGTHS)]
    tasks.append(Task("sink", "combine", runtime_s=kernels.CALL_OVERHEAD_S, output_bytes=SMALL_RESULT_BYTES,
                      func=kernels.total, args=tuple(last)))
    return _build(tasks, "five_branches", "five_branches", {"size": size, "rounds": rounds, "seed": seed})
