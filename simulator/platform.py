"""The platform model: what the world adds to a plan's task durations.

A :class:`Platform` holds every parameter the simulator needs beyond the cost
model's execution times: start-ups, keep-alive, latencies, storage, and the
overhead terms real workflow systems show.  Each has a documented default and a
unit; every field is a plain float so a platform round-trips through a dict or a
TOML file (``planlab calibrate`` writes one, ``planlab simulate --platform``
reads it).

Defaults describe planlab's own executor on this kind of machine (FACTS.md):

* ``cold_start_s = 0.25``: a fresh interpreter importing redis + numpy takes 220-300 ms.
* ``warm_start_s = 0.002``: a live process only claims its next task.
* ``keep_alive_s = 600``: an idle process stays warm ten minutes (serverless
  platforms keep idle functions for minutes; the executor's pool likewise).
* ``invoke_s = 2e-4``: one Redis round trip that must wake another vCPU (145-210 us).
* ``coordination_s = 1.5e-4``: one scripted counter update per completion (~145 us).
* ``storage_latency_s = 5e-4``, ``storage_bandwidth_Bps = 200e6``: the cost
  model's transfer priors (a round trip plus (de)serialisation at 3-8 ms per MiB).
* ``storage_sharing = 2``: two transfers in flight at once each take this many times as
  long as one alone; while two or more are in flight the link moves ``2 / storage_sharing``
  times its bandwidth in total (:class:`simulator.storage.SharedLink`).  2 is one bandwidth
  shared equally (every result before it); a real server overlaps part of two clients' work
  (this host's Redis: two concurrent 10 MiB GETs take ~1.7x one alone), which a host probe
  measures (``benchmarks/bench_optimizations.py: probe_sharing``).  Between 1 and 2.
* ``storage_first_come = 0``: how much the link favours the transfers in flight longer
  (:class:`simulator.storage.RankedLink`): ranked by start, each weighs ``(1 - p) / (1 + p)``
  times the one before it, so of two in flight the first gets ``(1 + p) / 2`` of the link;
  the link's total rate is unchanged.  0 is equal shares (every result before it); 1 is first
  come first served.  The optimizations benchmark's host probe measures ``p`` from the same
  pairs as ``storage_sharing`` (two workers woken by notifications, each downloading 10 MB):
  0.06-0.29, median 0.11, on a loaded host; 0 on a quiet one (issue 17).  Start order is a
  small effect: two downloads started 0-5 ms apart by idle processes share about equally,
  while a background fetch beside a CPU-bound task gets the smaller share whichever started
  first (not modelled by this term).  Between 0 and 1.
* ``download_bandwidth_Bps = 0``: the rate of a download alone, when it is not the link's
  (0: ``storage_bandwidth_Bps`` both ways).  A download of ``b`` bytes takes the link as long as
  ``b * storage_bandwidth_Bps / download_bandwidth_Bps`` uploaded bytes would (its share of the
  link when others run is in that proportion).  On planlab's executor a download receives its
  bytes into a new buffer (zero-filled, every page faulted in: a 64 MB ``bytearray`` alone took
  ~0.12 s at load 10) while an upload sends bytes the worker holds: the optimizations benchmark's
  host probe measured a 64 MB download 2.5x as long as its upload (issue 17).
* ``storage_duplex = 0``: 1 gives uploads and downloads a link each (a network's full duplex:
  the storage behind a network link, ``benchmarks/_remote_link.py``), each shared by the
  transfers of its direction at its own rate (``storage_bandwidth_Bps`` up,
  ``download_bandwidth_Bps`` or the same down; :class:`simulator.storage.DuplexLink`); 0 (every
  result before it) puts both directions on one link, as on the embedded server, whose one
  thread and the host's memory serve both (a switch: 0 or 1).
* ``large_transfer_bytes = inf``, ``large_upload_s_per_byte = 0``, ``large_download_s_per_byte = 0``:
  a transfer's bytes beyond ``large_transfer_bytes`` (a task's inputs fetched together count as
  one transfer) cost that many more seconds each, a delay of the worker's own, not a share of the
  link (``simulator.transfers.large_extra_s``).  On this host warm workers moved 10-32 MB at
  1.2-2.4 GB/s but 64 MB at 0.66-1.15 GB/s and a gather's 4-7 x 32 MB at 0.45-0.64 GB/s (quiet,
  issue 17): bytes past what a process's allocator reuses are new memory, each page faulted in
  and zeroed.  The optimizations benchmark's host probe measures both regimes.
* ``preload_lag_s = 0``: seconds from a pre-loaded input being stored (or, stored before, from its
  pre-load's start) to its background fetch starting (:mod:`simulator.overlap_loop`).  The
  executor's pre-load thread is woken by the commit that stores the input and needs the GIL
  beside the task its worker runs; the optimizations benchmark's host probe measures the lag
  (``benchmarks/bench_optimizations.py: probe_preload_lag``).  0: the fetch starts at once (every
  result before it).
* ``task_overhead_s = 0``: worker-side bookkeeping per task beyond the above.
* ``workflow_start_s``, ``dispatch_s``, ``level_delay_s``, ``staging_s_per_GB``:
  the workflow-system overheads FACTS.md found in real executions (start-up of the
  workflow system, a *serial* per-task dispatch, a per-level release delay, *serial*
  data staging).  Zero by default; :func:`experiments.calibration.calibrate` fits them.
* ``machine_dispatch_s = 0``: seconds per task through its *machine's* serial starter,
  after the one serial dispatcher (:mod:`simulator.dispatch`: a node's daemon or a
  Makeflow worker launching its node's jobs one at a time; a machine is a worker's
  profile, one per recorded machine in a replay).  Zero by default; calibration fits it.
* ``stage_in_s_per_GB = 0``, ``stage_out_s_per_GB = 0``: the serial stager's extra
  seconds per GB for two kinds of bytes (:mod:`simulator.staging`): a task's *external
  inputs* (files no task writes, staged in before the tasks that read them) and what a
  task *writes* (staged out after it), on top of ``staging_s_per_GB``, which every byte
  pays.  Workflow systems move the two differently (Pegasus' stage-in jobs fetch the
  workflow's inputs from another site, its stage-out jobs write to the output site).
* ``background_runs = 0``, ``background_dispatch_s = 0``: other runs the workflow system
  was already serving when this one was submitted, and what each adds to the serial
  dispatch of every task (:mod:`simulator.dispatch`: one submit host shared by several
  workflows; WfInstances' seismology runs beside two or three others paid about 1 s more
  per task than alone).  The count is the run's (a user gives it for a prediction,
  calibration reads it from the recorded starts); calibration fits the cost on request.
  Zero by default (one rate for every byte, as before); calibration fits them on
  request (``calibrate(..., staging_split=True)``, ``planlab calibrate --staging-split``).

The host (:mod:`simulator.host`).  planlab's own executor runs every worker
process on one machine, so what its workers do at once competes for that
machine's cores; a serverless platform gives every worker its own.

* ``host_cores = inf``: unshared (serverless, and every result before the host
  model).  A finite value (``Platform.for_local_host()`` takes this machine's
  count) makes executions and start-ups CPU work shared max-min fairly: a task
  measured alone for ``x`` s on a profile of ``c`` CPUs is ``x * min(c,
  task_parallelism)`` CPU-seconds capped at ``min(c, task_parallelism)`` cores; a
  start-up (cold or warm, seconds when alone) likewise at ``min(c, 1)``.
* ``task_parallelism = 1``: most workflow tasks (and every replayed task) run on
  one thread, whatever their quota; set it higher for tasks that really use
  several cores (multiprocessing).  Kinds the cost model found *threaded* (faster
  on more CPUs in the profile measurements: BLAS, OpenMP - :mod:`planning.costs.threads`)
  keep their whole quota busy regardless of this term.
* ``launch_s = 0``, ``process_start_s = 0``: one launcher takes the start requests
  one at a time, in arrival order: it hands each to an idle process of its profile
  if one is free *when it gets to it* (``launch_s``), else forks and limits a new one
  (``launch_s + process_start_s``; FACTS: ~14 ms per fork alone, much more under
  fan-out).  Both are the launcher's own single-threaded CPU work on the host: a
  busy host slows the launcher too.  So the k-th request of a burst waits for the k - 1 before it, and a
  wide fan-out of short tasks runs on the few processes its first workers free.
  Used only with a finite host.
* ``spec_load_s = 0``, ``spec_load_s_per_task = 0``: a worker process loads the
  run's specification (every task's code and decisions) before its first logical
  worker of a run - on a cold start, and on a warm start from a process left by an
  earlier run - as CPU work of ``spec_load_s + spec_load_s_per_task * tasks`` (the
  executor also collects the process's garbage once then: a fixed part).  Used only
  with a finite host.
* ``fair_threads = 1``: a threaded kind runs as many threads as the executor's
  ``threads="fair"`` rule gives its worker (:func:`planning.costs.threads.fair_thread_counts`:
  the quota times ``min(1, host_cores / the plan's peak CPUs)``, at least one), so on a
  plan that asks for more CPUs at once than the host has it takes the cost model's
  time on that many CPUs and keeps that many cores busy; ``0``: pools sized to the
  quota (the executor's ``threads="quota"``).  Used only with a finite host.
* ``nodes = ()``: the cluster's nodes (:class:`planning.schedule.nodes.ClusterNode`: name,
  ``cores``, ``memory_mb``, the ``profiles`` a node is marked for), for a run whose
  workers spread over several machines (the Ray launcher).  Empty (the default): one
  host of ``host_cores``, as before, bit for bit.  Given: each worker is placed on a
  node when it starts by the one placement rule (:class:`planning.schedule.nodes.NodePlacer`:
  the first node in this order that offers its profile and has its CPUs and memory
  free, else the least loaded offering node), its executions and start-ups share that
  node's cores max-min fairly, and an idle process is reused only by a worker placed
  on its node; ``host_cores`` is then the nodes' total (set to it when left ``inf``),
  the launcher's own work runs on the first node, and ``host_background`` is spread
  over the nodes in proportion to their cores.  In a TOML file: one ``[[nodes]]``
  table per node; a platform's dict has a ``nodes`` list only when there are nodes.
* ``fetch_server_s_per_byte``, ``fetch_thread_s_per_byte``, ``upload_server_s_per_byte``,
  ``upload_thread_s_per_byte``: a transfer's CPU on a shared host, per byte - the
  server's side (on the host's cores) and the worker's transfer thread's (a background
  one inside its worker's CPU quota, beside the task it runs: :mod:`simulator.quota`);
  the defaults are measured (``simulator.host``: 0.6 ns per byte fetched, 0.35 uploaded,
  about half each side's), the optimizations benchmark probes them.  Used only with a finite host.
* ``host_background = 0``: other CPU-bound work on the host (another user's jobs),
  in cores; it takes its max-min fair share like the run's own work.  The load a
  run saw is recorded with it, so calibration and forecasts can set this per run.

Run-to-run variation.  A task's own noise (the cost model's ratios) is drawn task
by task, but a real host is faster or slower *for a whole run* (other users come
and go, the CPU's clock, the page cache): real makespans of one plan spread about
twice as wide as replications with only per-task noise.

* ``run_noise = 0``: the standard deviation of the log of one Monte Carlo
  replication's speed factor: every sampled duration of the replication (executions,
  transfers, start-ups) is multiplied by one log-normal factor of median 1.  Only
  sampled runs use it; deterministic simulations are unchanged.
  :func:`experiments.calibration.trace_calibration.calibrate_on_runs` fits it from
  repeated real runs of the same plan (:func:`~experiments.calibration.run_noise.fit_run_noise`).
* ``noise_scale = 1``: the other way round - when real runs of one plan spread
  *less* than replications drawing every task's noise independently (the cost
  model's ratios mix run-to-run noise with differences between tasks of one kind,
  or were measured on a busier host), every sampled ratio ``r`` becomes
  ``1 + noise_scale * (r - 1)``: the same means, a narrower spread; 0 is the
  deterministic run.  Fitted by the same function.
* ``run_center = 1``: the median of that speed factor.  The host terms are fitted
  so that deterministic runs match real ones in the least-squares sense (every
  task's completion and the makespan), which lands them near the runs' *mean*; a
  host's slow runs are rarer and longer than its fast ones, so the typical (median)
  run is faster, and a wide workflow's sampled runs end later than its
  deterministic one (the latest of many noisy branches).  ``run_center`` puts the
  sampled runs' median on the real runs' median, so a p50 SLA is met half the time.
  Fitted by the same function.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from planning.errors import ConfigError
from planning.schedule.nodes import ClusterNode, nodes_from_dicts
from planning.schedule.startups import KEEP_ALIVE_S


@dataclass(frozen=True)
class Platform:
    """Platform parameters (seconds, bytes per second, seconds per GB); see the module docstring."""

    cold_start_s: float = 0.25          # s: a new worker process starts (no idle process of its profile)
    warm_start_s: float = 0.002         # s: a new logical worker reuses an idle process of its profile
    keep_alive_s: float = KEEP_ALIVE_S  # s: an idle process stays warm this long after its worker stops (600)
    invoke_s: float = 2e-4              # s: a message (invocation or notification) reaches another worker
    coordination_s: float = 1.5e-4      # s: one round trip per dependency-counter update
    storage_latency_s: float = 5e-4     # s: per transfer to or from storage (not shared)
    storage_bandwidth_Bps: float = 200e6  # bytes/s: shared equally by concurrent transfers (inf: free)
    storage_sharing: float = 2.0        # two concurrent transfers each take this many times one alone (2: equal shares)
    storage_first_come: float = 0.0     # 0..1: of two transfers in flight the earlier gets (1 + p) / 2 (0: equal)
    download_bandwidth_Bps: float = 0.0  # bytes/s: a download alone (0: storage_bandwidth_Bps, the same both ways)
    storage_duplex: float = 0.0         # 1: uploads and downloads each have a link of their own (a network); 0: one
    large_transfer_bytes: float = math.inf  # bytes one transfer call moves before each further byte costs more (inf: never)
    large_upload_s_per_byte: float = 0.0    # s per uploaded byte beyond large_transfer_bytes, on top of the link's
    large_download_s_per_byte: float = 0.0  # s per downloaded byte beyond large_transfer_bytes, on top of the link's
    preload_lag_s: float = 0.0          # s: a pre-loaded input stored (or its pre-load started) -> its fetch starts
    task_overhead_s: float = 0.0        # s: per task on its worker, between inputs and execution
    workflow_start_s: float = 0.0       # s: from submission until the first task is released
    dispatch_s: float = 0.0             # s: per task, through one serial dispatcher (FIFO)
    level_delay_s: float = 0.0          # s: per task, between becoming ready and being dispatched
    staging_s_per_GB: float = 0.0       # s per 1e9 bytes moved, through one serial stager (FIFO)
    machine_dispatch_s: float = 0.0     # s: per task, through its machine's serial starter (FIFO per machine)
    # the host that runs the worker processes (see "The host" in the module docstring)
    host_cores: float = math.inf        # cores shared by executions and start-ups running at once (inf: unshared)
    task_parallelism: float = 1.0       # cores one task's execution can use at most (the threads it really runs)
    launch_s: float = 0.0               # s: the launcher's serial handling of every start request, warm or cold
    process_start_s: float = 0.0        # s: per cold start, serial in the launcher (fork + limits), before start-up
    fair_threads: float = 1.0           # 1: threaded kinds run the executor's threads="fair" count, 0: the quota's
    host_background: float = 0.0        # cores' worth of CPU-bound work outside the run, sharing the host
    # the CPU a transfer takes on the host, per byte: the server's side (host cores) and the worker's thread's (its
    # quota while it runs beside the worker's task: simulator.quota); defaults measured (simulator.host)
    fetch_server_s_per_byte: float = 3.1e-10
    fetch_thread_s_per_byte: float = 2.9e-10
    upload_server_s_per_byte: float = 1.75e-10
    upload_thread_s_per_byte: float = 1.75e-10
    spec_load_s: float = 0.0            # s of CPU: a process loads the run's spec once per run (fixed part)
    spec_load_s_per_task: float = 0.0   # s of CPU per workflow task, for the same load (part growing with size)
    run_noise: float = 0.0              # sd of log(one replication's speed factor), sampled runs only
    noise_scale: float = 1.0            # sampled ratios' deviation from their mean, scaled (1: as measured)
    run_center: float = 1.0             # median of one replication's speed factor, sampled runs only
    stage_in_s_per_GB: float = 0.0      # s per 1e9 bytes of external inputs, on top of staging_s_per_GB (serial)
    stage_out_s_per_GB: float = 0.0     # s per 1e9 bytes a task writes, on top of staging_s_per_GB (serial)
    background_runs: float = 0.0        # other runs the workflow system serves while this one is submitted
    background_dispatch_s: float = 0.0  # s: per task and background run, added to dispatch_s (serial)
    #: the cluster's nodes (empty: one host of ``host_cores``); see "The host" in the module docstring
    nodes: tuple[ClusterNode, ...] = ()

    def __post_init__(self) -> None:
        self._check_numbers()
        nodes = nodes_from_dicts(self.nodes)
        object.__setattr__(self, "nodes", nodes)
        if nodes:
            total = float(sum(n.cores for n in nodes))
            if math.isinf(self.host_cores):
                object.__setattr__(self, "host_cores", total)
            elif abs(self.host_cores - total) > 1e-9 * total:
                raise ConfigError(f"platform host_cores = {self.host_cores:g} but its nodes have {total:g} cores",
                                  "leave host_cores out (it is the nodes' total) or make them agree")

    def _check_numbers(self) -> None:
        for f in _number_fields():
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"platform {f.name} must be a number, got {value!r}",
                                  f"set {f.name} to a number ({_UNITS[f.name]})")
            value = float(value)
            positive = f.name in _POSITIVE
            if math.isnan(value) or value < 0 or (positive and value == 0):
                bound = "> 0" if positive else ">= 0"
                raise ConfigError(f"platform {f.name} must be {bound}, got {value!r}", f"set {f.name} {bound}")
            if f.name == "storage_sharing" and not 1.0 <= value <= 2.0:
                raise ConfigError(f"platform storage_sharing must be between 1 and 2, got {value!r}",
                                  "set storage_sharing to 2 (equal shares of the bandwidth) or the measured factor")
            if f.name == "storage_first_come" and value > 1.0:
                raise ConfigError(f"platform storage_first_come must be between 0 and 1, got {value!r}",
                                  "set storage_first_come to 0 (equal shares), 1 (first come first served) "
                                  "or the probed value between")
            if f.name in _SWITCHES and value not in (0.0, 1.0):
                raise ConfigError(f"platform {f.name} must be 0 or 1, got {value!r}", f"set {f.name} = 1 (on) or 0 (off)")
            if f.name == "noise_scale" and value > 1:
                raise ConfigError(f"platform noise_scale must be <= 1, got {value!r}",
                                  "set noise_scale between 0 (deterministic) and 1 (the measured spread); "
                                  "a wider spread is run_noise")
            if math.isinf(value) and f.name not in _MAY_BE_INFINITE:
                raise ConfigError(f"platform {f.name} must be finite, got {value!r}", f"set {f.name} to a finite number")
            object.__setattr__(self, f.name, value)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def zero(cls) -> "Platform":
        """No overheads at all: free transfers, instant start-ups, no keep-alive (the exactness baseline)."""
        return cls(**{f.name: 0.0 for f in _number_fields()} | {"storage_bandwidth_Bps": math.inf, "host_cores": math.inf,
                                                               "task_parallelism": 1.0, "noise_scale": 1.0,
                                                               "run_center": 1.0, "storage_sharing": 2.0}
                   | _TRANSFER_CPU)

    @classmethod
    def for_local_host(cls, **overrides: Any) -> "Platform":
        """The defaults with this machine as the host (its usable core count), e.g. for planlab's own executor."""
        return cls(host_cores=float(local_cores())).with_(**overrides)

    @property
    def shared_host(self) -> bool:
        """Whether the workers share a host's cores (a finite ``host_cores``)."""
        return not math.isinf(self.host_cores)

    @classmethod
    def from_cost_model(cls, cost_model: Any, sla: Any = "mean", **overrides: Any) -> "Platform":
        """Storage latency and bandwidth and start-ups from a cost model at ``sla``.

        So a deterministic simulation at the plan's SLA agrees with the plan except
        for what the plan does not model: contention for bandwidth, keep-alive (warm
        starts), invocation and coordination latencies.  Limits: the platform has one
        storage, so transfers follow the cost model's *download* law both ways, and one
        start-up pair, the model's pooled one (a model fitted per profile differs).
        """
        from planning.sla import SLA

        sla = SLA.parse(sla)
        down = cost_model.transfer_distribution(1.0, "download")
        factor = float(sla.of(down.ratios))
        latency, spb = _transfer_law(cost_model)
        values = {
            "storage_latency_s": latency * factor,
            "storage_bandwidth_Bps": math.inf if spb * factor <= 0 else 1.0 / (spb * factor),
            "cold_start_s": float(cost_model.startup_distribution("*", True).at(sla)),
            "warm_start_s": float(cost_model.startup_distribution("*", False).at(sla)),
        }
        return cls(**values).with_(**overrides)

    def with_(self, **changes: Any) -> "Platform":
        """A copy with some fields changed (unknown names raise :class:`ConfigError`)."""
        _check_keys(changes, "platform override")
        if "nodes" in changes and "host_cores" not in changes and self.nodes:
            changes = {**changes, "host_cores": math.inf}   # the new nodes' total, not the old ones'
        return replace(self, **changes)

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        """Every number by name, and a ``nodes`` list only when there are nodes (earlier dicts stay as they were)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in _number_fields()}
        if self.nodes:
            data["nodes"] = [n.to_dict() for n in self.nodes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Platform":
        """Fields not given keep their defaults; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a platform must be a table of parameters, got {type(data).__name__}",
                              "write key = value lines, e.g. invoke_s = 0.01")
        _check_keys(data, "platform")
        return cls(**dict(data))

    def to_toml(self, path: str | Path | None = None, comment: str = "") -> str:
        """TOML text (written to ``path`` when given); ``inf`` is valid TOML."""
        lines = [f"# {line}" for line in comment.splitlines()] if comment else []
        lines.append("# planlab platform parameters (see simulator/platform.py for units)")
        for f in _number_fields():
            lines.append(f"{f.name} = {_toml_float(getattr(self, f.name))}  # {_UNITS[f.name]}")
        for node in self.nodes:
            profiles = ", ".join(f'"{p}"' for p in node.profiles)
            lines += ["", "[[nodes]]  # a node of the cluster (simulator/platform.py: nodes)", f'name = "{node.name}"',
                      f"cores = {_toml_float(node.cores)}", f"memory_mb = {_toml_float(node.memory_mb)}",
                      f"profiles = [{profiles}]"]
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_toml(cls, path: str | Path) -> "Platform":
        """Read a file written by :meth:`to_toml` (a ``[platform]`` table is accepted too)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"platform file {str(path)!r} does not exist",
                              "give the TOML file written by 'planlab calibrate --out'") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"platform file {str(path)!r} is not valid TOML: {exc}", "fix the TOML syntax") from None
        if set(data) == {"platform"} and isinstance(data["platform"], Mapping):
            data = data["platform"]
        return cls.from_dict(data)


#: a transfer's CPU per byte on a shared host: ``Platform.zero`` keeps the measured defaults (it charged them before
#: they were fields; without a finite host they cost nothing)
_TRANSFER_CPU = {"fetch_server_s_per_byte": 3.1e-10, "fetch_thread_s_per_byte": 2.9e-10,
                 "upload_server_s_per_byte": 1.75e-10, "upload_thread_s_per_byte": 1.75e-10}
#: fields that must be > 0 (not just >= 0), and fields whose ``inf`` means "unlimited"
_POSITIVE = frozenset({"storage_bandwidth_Bps", "host_cores", "task_parallelism", "run_center"})
_MAY_BE_INFINITE = frozenset({"storage_bandwidth_Bps", "host_cores", "task_parallelism", "large_transfer_bytes"})
#: fields that are switches: 0 (off) or 1 (on), kept as numbers so a platform stays a table of floats
_SWITCHES = frozenset({"fair_threads", "storage_duplex"})

_UNITS = {
    "cold_start_s": "seconds", "warm_start_s": "seconds", "keep_alive_s": "seconds", "invoke_s": "seconds",
    "coordination_s": "seconds", "storage_latency_s": "seconds", "storage_bandwidth_Bps": "bytes per second, inf = free",
    "storage_sharing": "times one transfer's duration two concurrent ones take, 1 to 2 (2 = equal shares)",
    "storage_first_come": "0 to 1: of two transfers in flight the earlier gets (1 + p) / 2 (0 = equal shares, "
                          "1 = first come first served)",
    "download_bandwidth_Bps": "bytes per second of a download alone, 0 = storage_bandwidth_Bps",
    "storage_duplex": "1 = uploads and downloads each on a link of their own (a network), 0 = one link for both",
    "large_transfer_bytes": "bytes one task's upload or download moves before the large rates apply, inf = never",
    "large_upload_s_per_byte": "seconds per uploaded byte beyond large_transfer_bytes, added to the link's time",
    "large_download_s_per_byte": "seconds per downloaded byte beyond large_transfer_bytes, added to the link's time",
    "preload_lag_s": "seconds from a pre-loaded input stored (or its pre-load started) to its fetch's start",
    "task_overhead_s": "seconds", "workflow_start_s": "seconds", "dispatch_s": "seconds per task, serial",
    "level_delay_s": "seconds per task release", "staging_s_per_GB": "seconds per 1e9 bytes, serial",
    "machine_dispatch_s": "seconds per task, serial per machine",
    "host_cores": "cores, inf = every worker has its own CPUs", "task_parallelism": "cores per task at most",
    "launch_s": "seconds per start request, serial", "process_start_s": "seconds per cold start, serial", "host_background": "cores of other work on the host",
    "fair_threads": "1 = threads='fair' rule, 0 = pools sized to the quota",
    "fetch_server_s_per_byte": "CPU seconds per byte fetched, the server's, on the host's cores",
    "fetch_thread_s_per_byte": "CPU seconds per byte fetched, the worker's thread's (its quota beside its task)",
    "upload_server_s_per_byte": "CPU seconds per byte uploaded, the server's, on the host's cores",
    "upload_thread_s_per_byte": "CPU seconds per byte uploaded, the worker's thread's (its quota beside its task)",
    "spec_load_s": "CPU seconds, once per process and run",
    "spec_load_s_per_task": "CPU seconds per workflow task, once per process and run",
    "run_noise": "sd of the log of a whole run's speed factor (Monte Carlo only)",
    "run_center": "median of a whole run's speed factor (Monte Carlo only), 1 = the deterministic run's",
    "noise_scale": "factor on every sampled ratio's deviation from its mean (Monte Carlo only), 1 = as measured",
    "stage_in_s_per_GB": "seconds per 1e9 bytes of external inputs, serial, added to staging_s_per_GB",
    "stage_out_s_per_GB": "seconds per 1e9 bytes written, serial, added to staging_s_per_GB",
    "background_runs": "other runs of the workflow system already running when this one was submitted",
    "background_dispatch_s": "seconds per task and background run, serial, added to dispatch_s",
}


def _number_fields() -> tuple[Any, ...]:
    """The platform's numeric fields (every field but ``nodes``)."""
    return tuple(f for f in fields(Platform) if f.name != "nodes")


def local_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_keys(data: Mapping[str, Any], what: str) -> None:
    known = {f.name for f in fields(Platform)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what} has unknown key {unknown[0]!r}",
                          f"use only {', '.join(sorted(known))}")


def _toml_float(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return repr(float(value))


def _transfer_law(cost_model: Any) -> tuple[float, float]:
    """(latency s, seconds per byte) of the cost model's download law, as it reports them."""
    law = cost_model.to_dict()["transfers"]["download"]
    bandwidth = law["bandwidth_Bps"]
    return float(law["latency_s"]), (0.0 if not bandwidth else 1.0 / float(bandwidth))
