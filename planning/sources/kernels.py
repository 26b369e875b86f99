"""The real code that generated tasks run.

Generated workflows (:mod:`planning.sources.generators`) are executable: every task
carries one of these functions.  They are plain module-level functions so that
they pickle by reference and come back from planlab's workflow JSON as
``planning.sources.kernels:NAME``, and they are deterministic, so the executor's results
can be compared with :func:`planning.workflow.run_locally`.

Two families:

* CPU-bound integer loops (:func:`spin`, :func:`spin_payload`, :func:`noop`) whose
  result is a small integer that mixes in every input, so a wrong or missing input
  changes the answer.  Cost: O(units) Python-level iterations, about
  :data:`SPIN_UNITS_PER_S` per second on one core.
* numpy matrix kernels (:func:`make_block`, :func:`multiply_blocks`,
  :func:`add_blocks`, :func:`assemble_blocks`, :func:`matrix_work`), whose cost
  is dominated by BLAS matrix products: 2 n^3 floating point operations per n x n
  product, about :data:`MATMUL_FLOPS_PER_S` per second on one core.

The two rates were measured on the development machine (a 2-core x86-64 VM,
Python 3.11, OpenBLAS 0.3 pinned to one thread); :func:`measure_rates` measures
them again on yours.  Generators turn them into the ``runtime_s`` hints of their
tasks, so the hints are "roughly what the kernel takes", not a promise.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

#: Iterations of :func:`spin`'s loop per second on one core (measured 4.7-9.2 M/s
#: on a shared VM, depending on its load).
SPIN_UNITS_PER_S = 6.5e6
#: Floating point operations per second of a one-core BLAS matrix product of
#: 64-256 square matrices (measured 17-45 GFLOP/s; 30-45 at n=200).
MATMUL_FLOPS_PER_S = 4.0e10
#: Seconds per matrix element of an O(n^2) pass (rescaling, adding); measured 1 ns.
ELEMENT_PASS_S = 1e-9
#: Fixed cost of calling a kernel at all (argument handling, allocation), seconds.
CALL_OVERHEAD_S = 2e-6
#: Fixed cost of seeding a numpy random Generator (measured 50 us).
RNG_SETUP_S = 5e-5

_MASK = 0x7FFFFFFF  # results stay below 2**31: small, exact, portable
_MULT, _INC = 1103515245, 12345  # the classic ANSI C linear congruential generator


# ---------------------------------------------------------------- digests
def digest(value: Any) -> int:
    """A deterministic 31-bit integer summarising ``value`` (any kernel result).

    Kernels fold their inputs through this so that every upstream result
    influences the output.  Arrays are summarised by a rounded sum (so tiny
    floating-point differences between BLAS builds do not flip the digest in
    practice), bytes by their first 8 bytes and length.  O(size of value).
    """
    if value is None:
        return 0
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value) & _MASK
    if isinstance(value, (float, np.floating)):
        return int(round(float(value) * 1e6)) & _MASK
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value[:8])
        return (int.from_bytes(raw, "little") ^ len(value)) & _MASK
    if isinstance(value, np.ndarray):
        return int(round(float(np.asarray(value, dtype=np.float64).sum()) * 1e3)) & _MASK
    if isinstance(value, dict):
        return _fold(digest(v) for _, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    if isinstance(value, (list, tuple)):
        return _fold(digest(v) for v in value)
    return digest(str(value).encode())


def _fold(values: Iterable[int]) -> int:
    acc = 17
    for v in values:
        acc = (acc * 31 + v) & _MASK
    return acc


# ---------------------------------------------------------------- CPU-bound integer kernels
def spin(units: int, *inputs: Any) -> int:
    """Burn ``units`` iterations of a linear congruential loop, seeded by the inputs.

    The result (< 2**31) depends on ``units`` and on every input, so it checks
    that the executor delivered the right upstream results.  Cost: O(units)
    pure-Python iterations, ``units / SPIN_UNITS_PER_S`` seconds on one core.
    """
    x = _fold([digest(v) for v in inputs] + [int(units)])
    for _ in range(int(units)):
        x = (x * _MULT + _INC) & _MASK
    return x


def spin_payload(units: int, nbytes: int, *inputs: Any) -> bytes:
    """:func:`spin`, returning ``nbytes`` bytes (at least 8) that start with its result.

    Lets a generated task really produce as much data as its ``output_bytes``
    hint says, so transfers in a real run cost what the plan assumed.  Cost:
    O(units + nbytes).
    """
    value = spin(units, *inputs)
    head = value.to_bytes(8, "little")
    return head + bytes(max(int(nbytes), 8) - 8)


def noop(*inputs: Any) -> int:
    """A near-free task: a digest of its inputs.  O(total size of inputs)."""
    return _fold(digest(v) for v in inputs)


def total(*values: Any) -> float:
    """The sum of numeric results (a join that is easy to check by hand)."""
    return float(sum(float(v) for v in values))


# ---------------------------------------------------------------- matrix kernels
def make_block(size: int, seed: int) -> np.ndarray:
    """A seeded ``size x size`` block with entries in [-1, 1).  O(size^2)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(int(size), int(size)))


def multiply_blocks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One block product ``a @ b``: 2 n^3 flops for n x n blocks."""
    return np.asarray(a) @ np.asarray(b)


def add_blocks(*blocks: np.ndarray) -> np.ndarray:
    """The element-wise sum of equally shaped blocks.  O(k n^2)."""
    if not blocks:
        raise ValueError("add_blocks needs at least one block")
    out = np.array(blocks[0], dtype=np.float64, copy=True)
    for b in blocks[1:]:
        out += b
    return out


def assemble_blocks(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """The full matrix from a grid of blocks (``np.block``).  O(total size)."""
    return np.block([list(r) for r in rows])


def matrix_work(prev: Any, size: int, rounds: int, seed: int) -> float:
    """``rounds`` real matrix products of ``size x size``, returning one float.

    Multiplies a matrix seeded by ``(seed, prev)`` ``rounds`` times by another
    seeded matrix, rescaling after each product so entries stay in [-1, 1].
    Repeated products converge (power iteration), so the upstream value ``prev``
    is also carried into the result explicitly: the answer is
    ``0.5 * prev + mean(final matrix)``, bounded by 2 in absolute value for any
    chain length, rounded to 9 decimals.  Small to ship and deterministic.
    Cost: 2 * rounds * size^3 flops plus O(rounds * size^2).
    """
    size, rounds = int(size), int(rounds)
    rng = np.random.default_rng([int(seed) & _MASK, digest(prev)])
    a = rng.uniform(-1.0, 1.0, size=(size, size))
    b = rng.uniform(-1.0, 1.0, size=(size, size))
    for _ in range(rounds):
        a = a @ b
        a /= max(float(np.abs(a).max()), 1e-300)
    return round(0.5 * _as_float(prev) + float(a.mean()), 9)


def _as_float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size:
        return float(np.mean(value))
    return (digest(value) % 1000) / 1000.0


# ---------------------------------------------------------------- cost estimates
def spin_seconds(units: int) -> float:
    """Expected seconds of :func:`spin` on one core."""
    return CALL_OVERHEAD_S + units / SPIN_UNITS_PER_S


def matmul_seconds(size: int, count: int = 1) -> float:
    """Expected seconds of ``count`` ``size x size`` products on one core."""
    return CALL_OVERHEAD_S + count * 2.0 * size ** 3 / MATMUL_FLOPS_PER_S


def make_block_seconds(size: int) -> float:
    """Expected seconds of :func:`make_block` (measured 6 ns per drawn element)."""
    return RNG_SETUP_S + 6 * size ** 2 * ELEMENT_PASS_S


def matrix_work_seconds(size: int, rounds: int) -> float:
    """Expected seconds of :func:`matrix_work` on one core."""
    return RNG_SETUP_S + matmul_seconds(size, rounds) + (2 * rounds + 12) * size ** 2 * ELEMENT_PASS_S


def measure_rates(spin_units: int = 200_000, matmul_size: int = 200, repeats: int = 3) -> dict[str, float]:
    """Measure this machine's :data:`SPIN_UNITS_PER_S` and :data:`MATMUL_FLOPS_PER_S`.

    Takes the best of ``repeats`` runs (about 0.15 s with the defaults).  The
    matrix rate uses however many BLAS threads numpy is allowed; set
    ``OPENBLAS_NUM_THREADS=1`` before starting Python for a one-core figure.
    """
    best_spin, best_mm = float("inf"), float("inf")
    a = make_block(matmul_size, 0)
    a @ a  # warm the BLAS thread pool
    for _ in range(repeats):
        t0 = time.perf_counter()
        spin(spin_units)
        best_spin = min(best_spin, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(10):
            a @ a
        best_mm = min(best_mm, (time.perf_counter() - t0) / 10)
    return {"spin_units_per_s": spin_units / best_spin,
            "matmul_flops_per_s": 2.0 * matmul_size ** 3 / best_mm}
