"""The client: an :class:`Executor` (server, local launcher, deployment secret) and its runs.

An executor owns a Redis endpoint (an embedded server by default), a local
launcher process kept across runs (warm worker processes survive between runs)
and the deployment secret every payload is sealed with (:mod:`executor.auth`).
Each :meth:`Executor.run` is one :class:`executor.run.Run`: submission in one
round trip, a blocking wait on the run's events, re-runs of dead workers, and
cleanup (see that module).  A server on another host without a password is
refused unless ``insecure=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import signal
import threading
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis

from executor import keys
from executor.auth import RunSealer, deployment_secret
from executor.launcher import new_launcher_id, run_launcher
from executor.limits import cleanup_stale_cgroups, probe_limits
from executor.messages import control_sealer, encode_control
from executor.pids import pid_answering
from executor.run import Run, task_timeouts, thread_share  # noqa: F401 - re-exported
from executor.server import RedisEndpoint, check_url_security
from executor.settings import ExecutorSettings
from executor.tracing import limits_summary
from planning.errors import ExecutionError, PlanError
from planning.protocol import WorkerProtocol
from planning.trace import Trace
from planning.workflow import Workflow

if TYPE_CHECKING:
    import pandas as pd

    from planning.plan import Plan

__all__ = ["Executor", "ExecutionResult", "execute", "task_timeouts", "thread_share"]


@dataclass
class ExecutionResult:
    """Sink results (``sink id -> value``), the real Trace, and what the run really was."""

    results: dict[str, Any]
    trace: Trace
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan_s(self) -> float:
        return self.trace.makespan_s

    def history(self, workflow: Workflow) -> pd.DataFrame:
        """This run's rows of the history schema (so the next plan learns from it)."""
        return self.trace.to_history(workflow.name, workflow.structure_hash())


class Executor:
    """A Redis endpoint and a local launcher kept across runs (warm processes survive between runs).

    ``redis_url=None`` starts an embedded server; otherwise the server at the URL
    is used (``redis://:PASSWORD@HOST:PORT/DB``, ``rediss://`` for TLS); a server on
    another host without a password is refused unless ``insecure=True``.
    ``local_launcher=False`` relies on ``planlab agent`` launchers serving
    ``settings.pool`` instead; they must share the deployment ``secret`` (bytes or
    text, else ``$PLANLAB_SECRET`` / ``$PLANLAB_SECRET_FILE``; without one a random
    secret is made and only the local launcher can serve the runs).
    """

    def __init__(self, redis_url: str | None = None, settings: ExecutorSettings | None = None, *,
                 local_launcher: bool = True, secret: bytes | str | None = None, insecure: bool = False) -> None:
        self.settings = settings or ExecutorSettings()
        if redis_url is not None:
            check_url_security(redis_url, insecure=insecure)
        shared = deployment_secret(secret, generate=False)
        if shared is None and not local_launcher:
            raise ExecutionError("an executor without a local launcher needs the agents' deployment secret",
                                 "pass secret=..., or set $PLANLAB_SECRET / $PLANLAB_SECRET_FILE as for the agents")
        self.secret: bytes = shared or deployment_secret()
        self.shared_secret = shared is not None
        self._requested_url = redis_url
        self._local_launcher = local_launcher
        self._endpoint: RedisEndpoint | None = None
        self._client: redis.Redis | None = None
        self._launcher: multiprocessing.process.BaseProcess | None = None
        self.launcher_id: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> Executor:
        if self._endpoint is not None:
            return self
        endpoint = RedisEndpoint(self._requested_url).open()
        try:
            self._client = endpoint.client(socket_timeout=30.0)  # blocking pops ask for <= 1 s
            self._client.ping()
            if self._local_launcher:
                self.launcher_id = new_launcher_id()
                ctx = multiprocessing.get_context("fork")
                main = threading.current_thread() is threading.main_thread()
                self._launcher = ctx.Process(target=run_launcher, name="planlab-launcher",
                                             args=(endpoint.url, self.secret, self.settings.pool, self.launcher_id,
                                                   main))
                with _ctrl_c_deferred(main):
                    self._launcher.start()
        except BaseException:
            if self._launcher is not None:
                self._launcher.kill()
                self._launcher.join(5)
                self._launcher = None
            endpoint.close()
            raise
        self._endpoint = endpoint
        return self

    def control(self, launcher_id: str, message: dict[str, Any]) -> None:
        """Send an authenticated control message (serve, cancel, stop) to one launcher."""
        key = keys.launcher_control(launcher_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, encode_control(control_sealer(self.secret, launcher_id), message))
        pipe.expire(key, 3600)
        pipe.execute()

    def close(self) -> None:
        """Stop the local launcher (its processes and cgroups go with it) and an embedded server."""
        if self._endpoint is None:
            return
        try:
            if self._launcher is not None:
                with contextlib.suppress(redis.RedisError):
                    self.control(self.launcher_id, {"type": "stop"})
                self._launcher.join(timeout=10)
                if self._launcher.is_alive():
                    self._launcher.kill()
                    self._launcher.join(timeout=5)
                    with contextlib.suppress(OSError):
                        cleanup_stale_cgroups()  # the killed launcher's cgroups (its pid is in their names)
                self._launcher = None
        finally:
            if self._client is not None:
                self._client.close()
            self._endpoint.close()
            self._endpoint = None

    def __enter__(self) -> Executor:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The server URL workers use (contains the password: do not log it)."""
        if self._endpoint is None:
            raise ExecutionError("the executor is not open", "use it as a context manager or call open()")
        return self._endpoint.url

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise ExecutionError("the executor is not open", "use it as a context manager or call open()")
        return self._client

    @property
    def embedded(self) -> bool:
        return self._endpoint is not None and self._endpoint.embedded

    def local_launcher_alive(self) -> bool | None:
        """None without a local launcher."""
        return None if self._launcher is None else self._launcher.is_alive()

    def local_launcher_answering(self) -> bool:
        """Whether the local launcher runs and can act (alive, not stopped): False without one."""
        return bool(self._launcher is not None and self._launcher.is_alive() and pid_answering(self._launcher.pid))

    # ------------------------------------------------------------------ one run
    def run(self, workflow: Workflow, plan: Plan, run_id: str | None = None,
            protocol: WorkerProtocol | None = None, *, measure_contention: bool | None = None) -> ExecutionResult:
        """Execute ``plan`` of ``workflow`` for real; see :func:`execute`.

        ``measure_contention`` overrides the settings' for this run only (the profile
        phase measures each task's wait for a core; its execute cells need not).
        """
        self.open()
        with self._lock:
            _check_plan(workflow, plan, self.settings)
            run_id = run_id or uuid.uuid4().hex[:12]
            protocol = protocol or WorkerProtocol.for_plan(workflow, plan)
            settings = self.settings if measure_contention is None else dataclasses.replace(
                self.settings, measure_contention=bool(measure_contention))
            run = Run(self, workflow, plan, run_id, protocol, RunSealer(self.secret, run_id), settings)
            results, trace, meta = run.execute()
            meta["limits_enforced"] = {**limits_summary(trace.workers), "support": _support_text(self.settings)}
            trace.meta.update(meta)
            return ExecutionResult(results, trace, meta)


def execute(workflow: Workflow, plan: Plan, *, redis_url: str | None = None, settings: ExecutorSettings | None = None,
            run_id: str | None = None, insecure: bool = False) -> ExecutionResult:
    """Run ``plan`` of ``workflow`` once on real, limited worker processes.

    Starts (and stops) an embedded server unless ``redis_url`` is given; use an
    :class:`Executor` to keep the server and warm processes across many runs.
    """
    with Executor(redis_url, settings, insecure=insecure) as ex:
        return ex.run(workflow, plan, run_id=run_id)


def _check_plan(workflow: Workflow, plan: Plan, settings: ExecutorSettings) -> None:
    """Refuse a plan that does not belong to the workflow, or needs too many processes."""
    if getattr(plan, "structure_hash", workflow.structure_hash()) != workflow.structure_hash():
        raise PlanError(f"the plan was made for workflow {plan.workflow_name!r} of another shape",
                        "plan this workflow first (planlab plan / get_planner(...).plan)")
    plan.validate(workflow)
    n = len(plan.workers)
    if not plan.dynamic and n > settings.max_processes:
        raise ExecutionError(f"the plan has {n} logical workers; a static plan may need them all at once "
                             f"(more than max_processes={settings.max_processes})",
                             "raise ExecutorSettings.max_processes, or plan with fewer workers")


_SUPPORT: dict[bool, str] = {}  # noqa: E305


def _support_text(settings: ExecutorSettings) -> str:
    if not settings.limits:
        return "limits off (ExecutorSettings.limits=False)"
    if True not in _SUPPORT:
        _SUPPORT[True] = probe_limits().describe()
    return _SUPPORT[True]


@contextlib.contextmanager
def _ctrl_c_deferred(main_thread: bool) -> Any:
    """Hold a Ctrl-C back while the launcher is forked, and raise it right after.

    A SIGINT landing inside the fork's at-fork handlers (``logging``'s lock release)
    is printed as "Exception ignored" and lost: the run then went on to its end and
    exited 0.  For the fork, SIGINT's Python handler only notes the signal (in the
    main thread, whichever thread the kernel delivered it to); the usual handler is
    put back after and, when a Ctrl-C came, called: a ``KeyboardInterrupt`` in
    :meth:`Executor.open`'s clean-up.  Only the main thread may set handlers.
    """
    if not main_thread:
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, caught[0])
    elif caught and previous == signal.SIG_DFL:
        raise KeyboardInterrupt
