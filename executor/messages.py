"""The executor's messages, sealed (:mod:`executor.auth`) so none is unpickled unauthenticated.

* a *start* tells a launcher to run a logical worker (generation ``gen``: 0 for
  the plan's start, one more for each re-run after a death; ``restart`` when the
  worker must first recover what its dead predecessor committed);
* a *notification* tells a running (or soon running) worker that a task is ready,
  possibly with a small parent output riding along;
* an *error* is a run's final failure (task, worker, readable traceback);
* a *metrics batch* carries a worker's timing rows to the client;
* a *control* message tells one launcher to serve a run, cancel one, or stop.
"""

from __future__ import annotations

from typing import Any

from executor.auth import RunSealer
from planning.protocol import Invocation

__all__ = ["encode_start", "start_message", "seal_start",
           "decode_start", "encode_note", "decode_note", "encode_error", "decode_error",
           "encode_batch", "decode_batch", "control_sealer", "output_label"]

_START, _NOTE, _ERROR, _BATCH, _CTL = b"start", b"note", b"error", b"metrics", b"ctl"


def output_label(task_id: str) -> bytes:
    """A stored output is bound to its task: it cannot be swapped for another's."""
    return b"out:" + task_id.encode()


def encode_start(sealer: RunSealer, inv: Invocation, spec: Any, t: float, sub: bytes | None = None,
                 pre: dict[str, bytes] | None = None, gen: int = 0, restart: bool = False,
                 fetch: tuple[str, int | None] | None = None, warm: bool = False) -> bytes:
    """A start invocation for the run's launch queue, sealed (:func:`start_message` says what it holds)."""
    return seal_start(sealer, start_message(sealer.run_id, inv, spec, t, sub, pre, gen, restart, fetch, warm))


def seal_start(sealer: RunSealer, msg: dict[str, Any]) -> bytes:
    return sealer.dumps(_START, msg)


def start_message(run: str, inv: Invocation, spec: Any, t: float, sub: bytes | None = None,
                  pre: dict[str, bytes] | None = None, gen: int = 0, restart: bool = False,
                  fetch: tuple[str, int | None] | None = None, warm: bool = False) -> dict[str, Any]:
    """A start invocation: what the launcher needs to pick or fork a process.

    ``ttl_s``, ``fetch`` (the parent output the first task reads: name, bytes or None for all) and
    ``code`` (its code's sub-DAG when ``sub`` does not carry it: :func:`code_key`) let the worker
    claim, fetch and read its code in its first round trip (:mod:`executor.worker_start`);
    ``warm``: a pre-warmed worker's start, ahead of its first task (``task``), which it waits for;
    ``spec``: the spec's digest (:func:`executor.process.spec_digest`), so a warm process that loaded it for an
    earlier run uses it again.
    """
    profile = spec.protocol.profile_of(inv.worker)
    cpus, memory_mb, threads = spec.profiles.get(profile, (None, None, None))
    s = spec.settings
    code = code_key(spec, inv.worker) if sub is None else None
    return {"type": "start", "run": run, "worker": inv.worker, "task": inv.task,
            "profile": profile, "cpus": cpus, "memory_mb": memory_mb, "threads": threads,
            "limits": s.limits, "keep_alive_s": s.keep_alive_s, "lease_s": s.lease_s,
            "heartbeat_timeout_s": s.heartbeat_timeout_s, "t": t, "sub": sub, "pre": pre,
            "gen": gen, "restart": restart, "ttl_s": s.key_ttl_s, "fetch": fetch,
            "spin_wait_s": getattr(s, "spin_wait_s", 0.0),
            "code": code, "spec": getattr(spec, "digest", ""),
            "code_digest": getattr(spec, "code_digests", {}).get(code, "") if code else "",
            **({"warm": True} if warm else {})}


def code_key(spec: Any, worker: str) -> str:
    """Which stored sub-DAG holds ``worker``'s code (``RunKeys.subdag``): ``*`` for a dynamic run, the
    worker's name, or "" when it runs no task with code (a replay run: nothing to read)."""
    if not spec.coded:
        return ""
    if spec.protocol.dynamic:
        return "*"
    return worker if any(t in spec.coded for t in spec.protocol.sequence.get(worker, ())) else ""


def decode_start(sealer: RunSealer, blob: bytes) -> dict[str, Any]:
    msg = sealer.loads(_START, blob)
    if not isinstance(msg, dict) or msg.get("run") != sealer.run_id:
        raise ValueError("a start message of another run")
    return msg


def encode_note(sealer: RunSealer, task_id: str, t: float, parent: str | None, inline: bytes | None) -> bytes:
    return sealer.dumps(_NOTE, (task_id, t, parent, inline))


def decode_note(sealer: RunSealer, blob: bytes) -> tuple[str, float, str | None, bytes | None]:
    return sealer.loads(_NOTE, blob)


def encode_error(sealer: RunSealer, info: dict[str, Any]) -> bytes:
    return sealer.dumps(_ERROR, info)


def decode_error(sealer: RunSealer, blob: bytes) -> dict[str, Any]:
    return sealer.loads(_ERROR, blob)


def encode_batch(sealer: RunSealer, batch: dict[str, Any]) -> bytes:
    return sealer.dumps(_BATCH, batch)


def decode_batch(sealer: RunSealer, blob: bytes) -> dict[str, Any]:
    return sealer.loads(_BATCH, blob)


def control_sealer(secret: bytes, launcher_id: str) -> RunSealer:
    """Control messages are bound to the launcher they are for."""
    return RunSealer(secret, f"launcher:{launcher_id}")


def encode_control(sealer: RunSealer, msg: dict[str, Any]) -> bytes:
    return sealer.dumps(_CTL, msg)


def decode_control(sealer: RunSealer, blob: bytes) -> dict[str, Any]:
    return sealer.loads(_CTL, blob)
