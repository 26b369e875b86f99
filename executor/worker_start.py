"""A logical worker's start in one round trip: its first input, the run's spec and its claim.

A warm process that receives a start invocation needs four things from the
server before its first task runs: the run's spec (unless it served this run
before), the claim of its logical worker (:data:`executor.scripts.CLAIM_LUA`),
the code of its tasks (unless the start carries it or it served this worker
before) and the parent output its first task reads.  Read one after another they
cost four round trips after the process wakes; sent together, one.  The start
invocation a completing parent sends names that output (its *fetch hint*:
:func:`fetch_hint`), so the child asks for it before it knows its own plan; the
reply comes first, so a large output is received straight into one buffer
(:meth:`executor.wire.Wire.call_bulk_first`).  The fetched bytes are used only
if the claim succeeds, and only as far as the child's own input decision asks
(:meth:`executor.worker_data.WorkerData._fetch`).  The trace keeps the transfer in
the first task's download phase: it starts when the round trip was sent.  The
process polls for that reply briefly before it sleeps (``spin_wait_s``,
:func:`executor.wire.spin_budget`): it has just woken, and the reply comes soon.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from executor import keys
from executor.process import ProcessContext, RunSpec
from executor.replay import read_command, replay_bytes
from executor.wire import spin_budget

__all__ = ["Opening", "open_start", "fetch_hint"]


@dataclass
class Opening:
    """What a start's first round trip brought: the spec, the claim's status, the hinted input."""

    spec: RunSpec | None
    claim: int | None                   # the claim script's reply; None: not claimed yet (claim after the spec)
    prefetched: dict[str, Any] = field(default_factory=dict)
    sent_at: float = 0.0                # when the round trip was sent: the first task's download starts then
    code: dict[str, bytes | None] | None = None   # sub-DAG name -> its stored bytes, when the round trip read them


def fetch_hint(spec: RunSpec, child: str, worker: str, parent: str,
               stored: int | None = None) -> tuple[str, int | None] | None:
    """The stored output of ``parent`` that ``child`` (first task of ``worker``) will fetch: (parent, bytes).

    ``None`` bytes: the whole output, by ``GET`` - a pickled one, or a replay's whose ``stored`` bytes (its
    length, known to the parent that stores it) the child's edge reads all of; else the replayed edge's
    share (``GETRANGE``; :func:`executor.replay.read_command`).  No hint when the child reads nothing of it.
    """
    if parent in spec.coded:
        return parent, None
    settings = spec.settings
    for f in spec.protocol.handle_inputs(child, worker, ()).fetch:
        if f.parent == parent:
            n = replay_bytes(f.nbytes, settings.bytes_scale, settings.max_replay_bytes)
            if n <= 0:
                return None
            return parent, (None if stored is not None and n >= stored else n)
    return None


def open_start(ctx: ProcessContext, msg: dict[str, Any]) -> Opening:
    """The start's first round trip: the hinted input, the spec when not cached, the claim.

    A start message without the run's key TTL (made by an older client) is claimed
    once its spec is loaded, as before.
    """
    run = msg["run"]
    k = keys.RunKeys(run)
    spec = ctx.cached_spec(run, msg.get("spec"))
    ttl_s = msg.get("ttl_s")
    if ttl_s is None:
        return Opening(spec or ctx.spec(run), None)
    hint = msg.get("fetch")
    cmds: list[tuple] = []
    if hint:
        parent, n = hint
        cmds.append(read_command(k.out(parent), n))
    cmds += ctx.scripts.load_commands()   # a new process's first round trip
    code_names = _code_to_read(ctx, msg)
    cmds += [("GET", k.subdag(name)) for name in code_names]
    spec_read = spec is None
    if spec_read:
        cmds.append(("GET", k.protocol))
    cmds.append(ctx.scripts.claim(k, msg["worker"], int(msg.get("gen", 0)), ctx.holder,
                                  int(float(msg["lease_s"]) * 1000), int(float(ttl_s) * 1000)))
    sent_at = time.time()
    spin = spin_budget(float(msg.get("spin_wait_s", 0.0)))   # the process just woke: its CPU is awake
    replies = ctx.wire.call_bulk_first(cmds, spin) if hint else ctx.wire.call(cmds, spin)
    ctx.scripts.loaded = True
    claim = int(replies[-1])
    if spec is None:
        spec = ctx.install_spec(run, replies[-2], msg.get("spec"))
    prefetched = {}
    if hint and replies[0]:   # b"" or None: missing (the child's own fetch reports it)
        prefetched[hint[0]] = replies[0]
    first_code = len(replies) - 1 - spec_read - len(code_names)
    code = {name: replies[first_code + i] for i, name in enumerate(code_names)} if code_names else None
    if msg.get("code") == "":   # the worker runs no task with code: nothing stored to read
        code = {msg["worker"]: None, "*": None}
    return Opening(spec, claim, prefetched, sent_at, code)


def _code_to_read(ctx: ProcessContext, msg: dict[str, Any]) -> list[str]:
    """The sub-DAG the start's round trip reads: the worker's code (``code``: its key's name, set by
    :func:`executor.messages.encode_start`), unless the start carries it, it is cached (for this run, or by the
    digest the start names), or there is none."""
    name = msg.get("code")
    if not name or msg.get("sub") is not None or ctx.code_cached(msg["run"], msg["worker"], msg.get("code_digest")):
        return []
    return [name]
