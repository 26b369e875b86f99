"""A logical worker's data: inputs read from memory or fetched from the server, outputs encoded and kept.

Part of :class:`executor.worker._LogicalWorker` (a mixin over its state: the
protocol, the wire, the run's keys and spec, its memory and prefetched outputs).
Remote inputs are fetched in one pipelined round trip when small, each large one
received straight into its own buffer when they add up to more (a replay child
reads only its edge's bytes, ``GETRANGE``, or all of them by ``GET`` when its edge
carries the whole output: :func:`executor.replay.read_command`); a
single remote input is received straight into one buffer
(:meth:`executor.wire.Wire.get_bulk`).  An output stays in memory while a task of
this worker will read it locally (:meth:`planning.protocol.WorkerProtocol.retention`).
"""

from __future__ import annotations

from typing import Any

from executor import codec
from executor.messages import output_label
from executor.replay import read_command, replay_bytes

#: Fetches whose bytes add up to less than this go in one pipeline; larger ones are received one by one
#: (:meth:`WorkerData._fetch_large`).
PIPELINE_FETCH_BYTES = 512 * 1024
#: Of several inputs fetched together, one of at least this many bytes is received straight into its own buffer
#: (``Wire.get_bulk``); smaller ones share a pipelined round trip.
BULK_MIN_BYTES = 64 * 1024


#: the suffix the commit's 'D' op gives an output its last reader read (executor.scripts: set aside, not freed)
RELEASED = ":released"


#: An output its last reader read is set aside (renamed in the commit, freed by the worker after it) from this
#: size up; a smaller one is deleted inside the commit.  Freeing takes the server ~0.07 ms per MB (2.2 ms per
#: 32 MB): under 1 MiB that is less than the round trip the worker's separate free would cost it (issue 17:
#: epigenomics' retention, every input under 132 kB, ran +2.9 % slower when each read cost that round trip).
SET_ASIDE_BYTES = 1 << 20


def release_op(nbytes: float) -> str:
    """The commit op releasing a stored input of ``nbytes`` (:mod:`executor.scripts`): ``'D'`` sets a large one
    aside for the worker to free after the commit, ``'X'`` deletes a small one in the commit."""
    return "D" if nbytes >= SET_ASIDE_BYTES else "X"


def released_keys(release: list) -> list[str]:
    """The set-aside names of the outputs a commit's release ops (``'D'`` ops, 5 entries each) may have renamed."""
    return [release[k + 1] + RELEASED for k in range(0, len(release), 5) if release[k] == "D"]


def free_released(client: Any, release: list) -> None:
    """Free what a committed task's reads set aside (per-task output retention), right after the commit.

    The commit renames an output its last reader read instead of deleting it: freeing a
    large value takes the single-threaded server ~2.2 ms per 32 MB, which inside the commit
    delayed every notice the commit carries (:mod:`executor.scripts`).  Sent after the
    commit's reply, it lets the children and the client hear first; an output another reader
    still needs was not renamed, and unlinking a missing key costs nothing.
    """
    names = released_keys(release)
    if names:
        client.unlink(*names)


class WorkerData:
    """Inputs, outputs and memory of a logical worker (see the module docstring)."""

    def _inputs(self, task_id: str, decision) -> tuple[dict[str, Any], int]:
        values = {p: self.memory[p] for p in decision.local}
        in_bytes = sum(self._nbytes(self.memory[p]) for p in decision.local)
        if decision.fetch:
            fetched = self._fetch(task_id, decision.fetch)
            values.update(fetched)
            in_bytes += sum(self._nbytes(v) for v in fetched.values())
        return values, in_bytes

    def _remember(self, task_id: str, value: Any, local_parents) -> None:
        """Keep an output in memory while a task of this worker will still read it locally (the protocol's retention).

        A dynamic worker may yet continue any child (the last parent to finish decides),
        so it keeps every output of its run.
        """
        retention = self.retention
        if retention is None:
            self.memory[task_id] = value
            return
        for p in local_parents:
            left = retention.get(p, 0) - 1
            retention[p] = left
            if left <= 0:
                self.memory.pop(p, None)
        if retention.get(task_id, 0) > 0:
            self.memory[task_id] = value

    def _fetch_large(self, plan: list[tuple[str, bool, int | None]], nbytes: dict[str, float]) -> list[Any]:
        """Several inputs adding up to :data:`PIPELINE_FETCH_BYTES` or more, on the worker's own connection: the
        small ones in one pipelined round trip, then each large one straight into a buffer of its size, in one
        blocking receive (:meth:`executor.wire.Wire.get_bulk` with ``whole_transfers``, as the pre-load thread).

        Why not threads of redis-py clients (the path until issue 17's fan-large study): each large reply went
        through hiredis's growing buffer and a copy, and the threads took turns at the GIL; a gather of 7 x 32 MB
        took 312 ms there against 107 ms this way (7 x 48 MB: 646 against 170 ms; fresh process per trial, 7
        interleaved trials, load 1.6-2) - one connection moves them one after another faster than seven at once.
        """
        small = [i for i, (parent, _, n) in enumerate(plan)
                 if (n if n is not None else nbytes[parent]) < BULK_MIN_BYTES]
        pipelined = set(small)
        large = [i for i in range(len(plan)) if i not in pipelined]
        raw: list[Any] = [None] * len(plan)
        if small:
            for i, value in zip(small, self.wire.call([self._read_command(plan[i][0], plan[i][2]) for i in small])):
                raw[i] = value
        whole, self.wire.whole_transfers = self.wire.whole_transfers, True
        try:
            for i in large:
                parent, _, n = plan[i]
                raw[i] = self.wire.get_bulk(self._read_command(parent, n))
        finally:
            self.wire.whole_transfers = whole
        return raw

    def _fetch(self, task_id: str, fetches) -> dict[str, Any]:
        """All remote inputs of a task (one pipeline when small, each large one into its own buffer: _fetch_large).

        Outputs that arrived inside the notification or start invocation are not fetched again; a coded
        parent's output inside a notification is not authenticated again either (the note's tag covers it).
        """
        out: dict[str, Any] = {}
        plan = []
        for f in fetches:
            coded = f.parent in self.spec.coded
            n = None if coded else replay_bytes(f.nbytes, self.settings.bytes_scale, self.settings.max_replay_bytes)
            if coded and f.parent in self.decoded:   # decoded once, however many children of this worker read it
                out[f.parent] = self.decoded[f.parent]
                continue
            if coded and f.parent in self.vouched:   # inside a note whose tag checked out: not checked again
                self.decoded[f.parent] = out[f.parent] = codec.loads_value(self.sealer.vouched(self.vouched.pop(f.parent)))
                continue
            data = self.prefetched.get(f.parent)
            if data is not None and not coded and len(data) < n:
                data = None   # fetched for a larger share than it holds: read the edge's share below
            if data is not None:
                if coded:   # the bytes are not needed once decoded
                    self.decoded[f.parent] = self._decode_output(f.parent, self.prefetched.pop(f.parent))
                    out[f.parent] = self.decoded[f.parent]
                else:
                    out[f.parent] = data if len(data) == n else data[:n]   # no copy of a whole output
            else:
                plan.append((f.parent, coded, n))
        if not plan:
            return out
        total = sum(f.nbytes for f in fetches)
        if len(plan) == 1 and (plan[0][1] or plan[0][2]):
            parent, coded, n = plan[0]  # one input: received straight into a buffer of its size
            raw = [self.wire.get_bulk(self._read_command(parent, n))]
        elif len(plan) == 1 or total < PIPELINE_FETCH_BYTES:
            raw = self.wire.call([self._read_command(parent, n) for parent, coded, n in plan])
        else:
            raw = self._fetch_large(plan, {f.parent: f.nbytes for f in fetches})
        for (parent, coded, n), data in zip(plan, raw):
            if data is None or data == 0:
                self._fail(task_id, f"the output of parent {parent!r} of task {task_id!r} is not on the server "
                                    "(it was never stored, or the run's keys were removed)", 0)
            if coded:
                out[parent] = self._decode_output(parent, data)
            else:
                out[parent] = b"" if not n else data if len(data) <= n else data[:n]   # (a GET of more than the share)
        return out

    def _read_command(self, parent: str, n: int | None) -> tuple:
        """How a fetch reads ``parent``'s stored output: all of it (``n`` None: pickled), a replay's share of
        ``n`` bytes (``GET`` when that is the whole output: :func:`executor.replay.read_command`), or only
        whether it is stored (``n`` 0: an edge of no bytes)."""
        key = self.keys.out(parent)
        if n == 0:
            return ("EXISTS", key)
        if n is None:
            return ("GET", key)
        return read_command(key, n, self._stored_bytes(parent))

    def _stored_bytes(self, task_id: str) -> int:
        """How many bytes a replay task's stored output holds (its largest out-edge, replayed)."""
        settings = self.settings
        return replay_bytes(self.protocol.output_bytes(task_id), settings.bytes_scale, settings.max_replay_bytes)

    def _remove_leftovers(self, client: Any, released: list[str] = ()) -> None:
        """After a sink's commit: when every sink's output is stored (so every task is done: each is an ancestor
        of a sink), remove every other output left on the server (and any set aside by a reader's commit whose
        worker died before freeing it).  Two sinks ending at once both may: idempotent.  ``released``: what this
        sink's own commit set aside (:func:`free_released`), freed here in the same call, after the ``EXISTS``
        round trip: the client, told by the commit, asks for the sink's output first."""
        protocol = self.protocol
        sinks = [t for t in protocol.topology.ids if not protocol.children(t)]
        if client.exists(*[self.keys.out(t) for t in sinks]) < len(sinks):
            if released:
                client.unlink(*released)
            return
        others = [self.keys.out(t) for t in protocol.topology.ids if protocol.children(t)]
        others += [k + RELEASED for k in others]
        for k in range(0, len(others), 1000):
            client.unlink(*others[k:k + 1000])

    def _encode(self, task_id: str, value: Any) -> bytes:
        if task_id not in self.spec.coded:
            return value
        try:
            data = codec.dumps_value(value)
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the task's result is the cause
            self._fail(task_id, f"the result of task {task_id!r} (a {type(value).__module__}.{type(value).__qualname__})"
                                f" could not be pickled: {type(exc).__name__}: {exc}", 1, unpicklable=True)
        return self.sealer.seal(output_label(task_id), data)

    def _decode_output(self, task_id: str, data: bytes | bytearray) -> Any:
        return codec.loads_value(self.sealer.open(output_label(task_id), data))

    @staticmethod
    def _nbytes(value: Any) -> int:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)
        return int(getattr(value, "nbytes", 0) or 0)
