"""Reads a running run's records from the coordination server: one pipelined round trip per poll.

The reader has its own connection and only reads what the executor records anyway
(:mod:`executor.keys`): ``HKEYS`` of the ``done`` and ``running`` hashes, ``HLEN`` of the
claims, the metric batches uploaded since the last poll (``LRANGE`` from where it
stopped, so each batch is read and authenticated once), the failed attempts and the
final error.  It pops nothing, writes nothing, and at one poll a second costs the
server a few hundred microseconds, so it cannot slow the run.

The run's submission time ``t0`` is not stored as such, but the run's ``live`` key is
set at submission with the run's TTL and never refreshed, so ``t0 = now - (TTL - PTTL)``
to the millisecond; every time the page shows is seconds since ``t0``, as in the Trace.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from executor import keys
from executor.auth import Forged, RunSealer
from executor.messages import decode_batch, decode_error
from executor.tracing import decode_batches
from experiments.live.state import Observation

__all__ = ["RunReader"]

_TASK_TIMES = ("ready", "worker_start", "download_start", "download_end", "exec_start", "exec_end",
               "upload_start", "upload_end", "done")
_WORKER_TIMES = ("start", "ready", "stop")


class RunReader:
    """Polls one run's keys; :meth:`poll` returns an :class:`Observation` (None before the run is submitted)."""

    def __init__(self, client: redis.Redis, run_id: str, secret: bytes, key_ttl_s: float) -> None:
        self.r = client
        self.k = keys.RunKeys(run_id)
        self.sealer = RunSealer(secret, run_id)
        self.ttl_ms = int(key_ttl_s * 1000)
        self.t0: float | None = None
        self.metrics_read = 0
        self.seen_tasks: set[str] = set()

    def poll(self) -> Observation | None:
        k = self.k
        pipe = self.r.pipeline(transaction=False)
        pipe.pttl(k.live)
        pipe.hkeys(k.done)
        pipe.hkeys(k.running)
        pipe.hlen(k.claims)
        pipe.lrange(k.metrics, self.metrics_read, -1)
        pipe.hgetall(k.attempts)
        pipe.get(k.error)
        before = time.time()
        pttl, done, running, claims, batches, attempts, error = pipe.execute()
        now = (before + time.time()) / 2
        if pttl is None or pttl < 0:
            return None            # not submitted yet, or over (cleaned up: the client's Trace takes over)
        if self.t0 is None:
            self.t0 = now - (self.ttl_ms - pttl) / 1000.0
        self.metrics_read += len(batches)
        rows, workers = self._decode(batches)
        return Observation(at_s=now - self.t0, done=frozenset(_text(d) for d in done),
                           running_workers=frozenset(_text(w) for w in running), started_workers=int(claims or 0),
                           rows=rows, worker_rows=workers,
                           attempts={_text(t): _text(v) for t, v in (attempts or {}).items()},
                           error=self._error(error))

    def _decode(self, batches: list[bytes]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Authenticated rows with times relative to ``t0`` (a batch failing authentication is skipped)."""
        good = []
        for blob in batches:
            try:
                good.append(decode_batch(self.sealer, blob))
            except Forged:
                continue
        tasks, workers = decode_batches(good, decode=lambda batch: batch)
        t0 = self.t0 or 0.0
        rows = []
        for r in tasks:
            if r["task_id"] in self.seen_tasks:
                continue
            self.seen_tasks.add(r["task_id"])
            row = {"task_id": r["task_id"], "worker": r["worker"], "cold_start": bool(r["cold_start"]),
                   "input_bytes": float(r["input_bytes"]), "output_bytes": float(r["output_bytes"])}
            row.update({f"{p}_s": float(r[p]) - t0 for p in _TASK_TIMES})
            rows.append(row)
        out_workers = [{**w, **{f"{p}_s": float(w[p]) - t0 for p in _WORKER_TIMES}} for w in workers]
        return rows, out_workers

    def _error(self, blob: bytes | None) -> dict[str, Any] | None:
        if not blob:
            return None
        try:
            info = decode_error(self.sealer, blob)
        except Forged:
            return None
        return {"task": info.get("task"), "worker": info.get("worker"), "traceback": str(info.get("traceback", ""))}


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
