"""Submitting a run: everything its workers need, written in one pipelined round trip.

The run's liveness key, the worker protocol over the code-less workflow (stored
once, fetched once per worker process), the counters of tasks with several
parents, large constants (once, by content hash), the sub-DAGs too large to
travel inline, the initial invocations (start invocations to the run's own
launch queue, with their sub-DAG inline when small; notifications to inboxes)
and a ``serve`` message to the executor's launcher (queued before the starts).  Every key gets the run's
TTL and every pickle is sealed.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from executor import codec, keys
from executor.messages import control_sealer, encode_control, encode_note, encode_start
from executor.process import RunSpec, spec_digest
from executor.run.budgets import profile_budgets, task_timeouts
from executor.run.context import RunContext
from planning.errors import ExecutionError
from planning.protocol import Invocation

__all__ = ["Submission", "check_run_id_free", "prepare", "submit"]


@dataclass(frozen=True)
class Submission:
    """A prepared run: its spec, sealed payloads and initial invocations."""

    spec: RunSpec
    spec_blob: bytes                 # the sealed spec
    constants: dict[str, bytes]      # digest -> sealed large constant
    subs: dict[str, bytes]           # worker ("*": every task of a dynamic run) -> sealed code of its tasks
    inline: frozenset[str]           # workers whose start message carries their code
    initial: list[Invocation]
    prepare_s: float                 # the time preparing took (before submission: not in the makespan)


def check_run_id_free(ctx: RunContext) -> None:
    if ctx.r.exists(ctx.k.live, ctx.k.metrics):
        raise ExecutionError(f"run id {ctx.run_id!r} is already in use on this server",
                             "pass another run_id, or none to get a fresh one")


def _code_groups(ctx: RunContext) -> tuple[RunSpec, dict[str, bytes], dict[str, bytes]]:
    """The spec over the code-less workflow, the sealed large constants, and each worker's sealed code."""
    wf, s = ctx.workflow, ctx.s
    proto = copy.copy(ctx.protocol)
    proto.workflow = codec.skeleton(wf)
    if proto.topology is wf._cache.get("topology"):   # the skeleton's view of it: no original task pickled
        proto.topology = proto.workflow.topology()
        proto.index, proto._pred = proto.topology.index, proto.workflow.graph._pred
    coded = frozenset(t.id for t in wf.tasks if t.func is not None)
    constants: dict[str, bytes] = {}
    codes = {t.id: codec.split_constants(t, s.constant_threshold_bytes, constants)
             for t in wf.tasks if t.func is not None}
    constants = {d: ctx.sealer.seal(b"const:" + d.encode(), data) for d, data in constants.items()}
    spec = RunSpec(proto, s, coded, 0.0, profile_budgets(ctx.plan, s), timeouts=task_timeouts(wf, ctx.plan, s))
    if ctx.protocol.dynamic:
        groups = {"*": codes}
    else:
        groups = {w: {t: codes[t] for t in seq if t in codes} for w, seq in ctx.protocol.sequence.items()}
    pickled = {w: codec.dumps_code(g) for w, g in groups.items()}
    spec.code_digests = {w: spec_digest(data) for w, data in pickled.items()}   # a warm process may have it
    subs = {w: ctx.sealer.seal(b"sub:" + w.encode(), data) for w, data in pickled.items()}
    return spec, constants, subs


def prepare(ctx: RunContext) -> Submission:
    """Everything to submit, timed (``prepare_s``)."""
    prep0 = time.perf_counter()
    spec, constants, subs = _code_groups(ctx)
    initial = ctx.protocol.initial_invocations()
    inline = frozenset(inv.worker for inv in initial if inv.start and not ctx.protocol.dynamic
                       and len(subs[inv.worker]) < ctx.s.inline_threshold_bytes)
    payload = codec.dumps_code(spec)
    spec.digest = spec_digest(payload)   # named in every start message: a warm process may have loaded it already
    spec_blob = ctx.sealer.seal(b"spec", payload)
    return Submission(spec, spec_blob, constants, subs, inline, initial, time.perf_counter() - prep0)


def submit(ctx: RunContext, sub: Submission, t0: float) -> None:
    """Write the run in one round trip (``t0``: the submission time every worker measures from)."""
    ttl, k = ctx.ttl_ms, ctx.k
    pipe = ctx.r.pipeline(transaction=False)
    pipe.set(k.live, "1", px=ttl)
    pipe.set(k.protocol, sub.spec_blob, px=ttl)
    for digest, data in sub.constants.items():
        pipe.set(k.const(digest), data, px=ttl)
    multi = {t: n for t, n in sub.spec.n_parents.items() if n > 1}
    if multi:
        pipe.hset(k.deps, mapping=multi)
        pipe.pexpire(k.deps, ttl)
    for w, blob in sub.subs.items():
        if w not in sub.inline:
            pipe.set(k.subdag(w), blob, px=ttl)
    if ctx.ex.launcher_id is not None:
        # The local launcher learns of the run in this round trip, before the starts are queued, so it
        # pops them as soon as they are (a control message of its own would cost one more round trip).
        control = keys.launcher_control(ctx.ex.launcher_id)
        pipe.rpush(control, encode_control(control_sealer(ctx.ex.secret, ctx.ex.launcher_id),
                                           {"type": "serve", "run": ctx.run_id}))
        pipe.expire(control, 3600)
    for inv in sub.initial:
        if inv.start:
            code = sub.subs[inv.worker] if inv.worker in sub.inline else None
            pipe.rpush(k.launch, encode_start(ctx.sealer, inv, sub.spec, t0, code))
        else:
            pipe.rpush(k.inbox(inv.worker), encode_note(ctx.sealer, inv.task, t0, None, None))
            pipe.pexpire(k.inbox(inv.worker), ttl)
    pipe.pexpire(k.launch, ttl)
    if ctx.ex.shared_secret:   # agents of the pool share the secret: they may serve this run too
        pipe.sadd(keys.pool_runs(ctx.s.pool), ctx.run_id)
        pipe.expire(keys.pool_runs(ctx.s.pool), int(ctx.s.key_ttl_s))
    pipe.execute()
