"""The workflow system's serial stager, with a rate per kind of bytes.

Real workflow systems move data through one serial stager (Pegasus' transfer jobs,
Makeflow's master), and the bytes it moves are of three kinds that cost differently:

* a task's **external inputs** (files no task of the workflow writes: the workflow's
  own inputs, staged in from outside - another site, a shared archive - before the
  tasks that read them), marked by :func:`mark_external` as :class:`ExternalBytes`;
* everything a task **writes** (its outputs, stored after it: staged out);
* the parents' outputs a task **fetches** (moves inside the workflow's storage).

Every byte pays ``Platform.staging_s_per_GB``; an external input byte pays
``stage_in_s_per_GB`` on top, a written byte ``stage_out_s_per_GB`` on top.  With both
extras at 0 (their defaults) the stager charges exactly what the one rate charged
before, bit for bit.  All three kinds queue at the one stager, first come first served.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from simulator.platform import Platform
from simulator.storage import FifoServer

_BYTES_PER_GB = 1e9


class ExternalBytes(float):
    """A fetch size (bytes) that is a task's external inputs, staged in from outside the workflow."""

    __slots__ = ()


def mark_external(tables: Any, stage_in: np.ndarray) -> None:
    """Mark, in compiled tables just :meth:`~planning.protocol.tables.DecisionTables.staged`, each task's
    external inputs (the entry ``staged`` appended last to its fetch lists) as :class:`ExternalBytes`."""
    for i in np.flatnonzero(np.asarray(stage_in, float) > 0).tolist():
        for lists in (tables.fetch, tables.fetch_sized):
            sizes = lists[i]
            if sizes and sizes[-1] == stage_in[i]:
                sizes[-1] = ExternalBytes(sizes[-1])


class Stager:
    """The one serial stager of a run: :meth:`serve` gives when a group of transfers leaves it."""

    __slots__ = ("per_byte", "in_per_byte", "out_per_byte", "active", "_server")

    def __init__(self, platform: Platform) -> None:
        self.per_byte = platform.staging_s_per_GB / _BYTES_PER_GB
        self.in_per_byte = platform.stage_in_s_per_GB / _BYTES_PER_GB
        self.out_per_byte = platform.stage_out_s_per_GB / _BYTES_PER_GB
        #: whether any byte costs stager time (else transfers skip it)
        self.active = self.per_byte > 0 or self.in_per_byte > 0 or self.out_per_byte > 0
        self._server = FifoServer()

    @property
    def highest_per_byte(self) -> float:
        """The most seconds a byte of any kind costs (> 0 exactly when the stager is active)."""
        return self.per_byte + max(self.in_per_byte, self.out_per_byte)

    def seconds(self, sizes: Sequence[float], upload: bool) -> float:
        """Stager seconds for one task's group of transfers (its fetches, or its upload)."""
        total, external = staged_bytes(sizes)
        extra = total * self.out_per_byte if upload else external * self.in_per_byte
        return total * self.per_byte + extra

    def serve(self, now: float, sizes: Sequence[float], upload: bool) -> float:
        """When the group arriving at ``now`` has been staged (``now`` when it costs nothing)."""
        work = self.seconds(sizes, upload)
        return self._server.serve(now, work) if work > 0 else now


def staged_bytes(sizes: Sequence[float]) -> tuple[float, float]:
    """A group of transfers' bytes through the stager, and the external part of them (:class:`ExternalBytes`),
    summed in transfer order (the makespan-only replay, :mod:`simulator.makespan_replay`, sums them so too, bit
    for bit)."""
    total = external = 0.0
    for s in sizes:
        if s > 0:
            total += s
            if type(s) is ExternalBytes:
                external += s
    return total, external
