"""Campaigns on Ray: a run's cells as Ray tasks across a cluster, each result written once, by the driver.

``planlab run CONFIG --ray [ADDRESS]`` or ``[run] backend = "ray"`` hands the cells
the runner would run one after the other (:func:`experiments.cell_run.run_cell`) to
Ray instead; everything before them (the results store, the profile phase, the
host calibration) and after them (consolidation, the report) is the local runner's.

* **planning and simulation cells** run in parallel, one CPU each, anywhere;
* **real-execution cells** need one unit of a custom resource (``[run]
  host_resource``, default ``planlab_host``) divided by ``[run]
  real_cells_per_host`` (default 1): a node started with ``--resources
  '{"planlab_host": 1}'`` runs one real cell at a time, so real runs never share a
  host and disturb each other's timings; nodes without the resource run none.
  Each real cell opens its own executor on its node (the config's ``[execute]``)
  and sends its saved run back to the driver.  With ``[run] spread_real_cells =
  true`` a real cell instead runs from the driver, one at a time, on a
  :class:`~executor.launcher.ray_launcher.RayExecutor`: one execution's workers
  spread over the cluster's nodes by the host model's placement rule
  (``ray_worker_nodes`` counts the nodes they used).

The driver writes each cell's result into the results store as it arrives - once,
whatever Ray retried - so an interrupted campaign resumes like a local one
(finished cells are skipped), and a cell's failure stops the campaign naming it,
with every finished cell saved.  Results carry ``ray_node``: the node that ran
the cell.  The cells' numbers are the local runner's: same seeds, same code.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from executor.launcher.ray_cluster import HOST_RESOURCE, connect, import_ray, node_id, offered
from planning.errors import ConfigError, ExecutionError, PlanlabError

__all__ = ["RayCampaign", "CellRunner", "CellResult", "split_saved_run"]

#: How often the driver, waiting for cells, checks that the cluster can still run them.
WATCH_S = 5.0
#: tables, summary row, extra files of one cell (what :func:`experiments.cell_run.run_cell` returns)
CellResult = tuple[dict[str, Any], dict[str, Any], dict[str, str]]


@dataclass
class RayCampaign:
    """Where and how a campaign's cells run on Ray (from ``[run]`` and ``--ray``)."""

    address: str | None = None
    host_resource: str = HOST_RESOURCE
    real_cells_per_host: int = 1
    spread_real_cells: bool = False

    def __post_init__(self) -> None:
        import_ray()   # without Ray installed, fail before the results folder is touched

    def connect(self, executes: bool) -> None:
        """Join the cluster (or start a local Ray with one host group); refuse one that could run no real cell."""
        connect(self.address, resources={self.host_resource: 1.0})
        if executes and offered().get(self.host_resource, 0.0) <= 0:
            raise ConfigError(f"no node of the Ray cluster offers the resource {self.host_resource!r}, so none would "
                              "run this config's real-execution cells",
                              f"start the nodes that may run real cells with ray start --resources "
                              f"'{{\"{self.host_resource}\": 1}}' (see README: more than one machine)")

    def _check_room(self, executes: bool) -> None:
        """Fail (rather than wait for ever) when no node is left that could run the remaining cells."""
        have = offered()
        if have.get("CPU", 0.0) <= 0 or (executes and have.get(self.host_resource, 0.0) <= 0):
            lost = self.host_resource if have.get("CPU", 0.0) > 0 else "CPU"
            raise ExecutionError(f"no node of the Ray cluster offers {lost!r} any more: the remaining cells cannot "
                                 "run (the finished ones are saved)",
                                 "restart or add nodes (ray start --address=HEAD:6379 ...), then run the same "
                                 "command again to resume")

    def run(self, cells: list[Any], runner: "CellRunner", record: Callable[[Any, CellResult], None]) -> None:
        """Run ``cells`` as Ray tasks; ``record(cell, result)`` each one in the driver as it finishes."""
        ray = import_ray()
        self.connect(runner.executes)
        if runner.executes and self.spread_real_cells:
            self._run_spread(cells, runner, record)
            return
        _share_user_files(ray)
        remote = ray.remote(_run_remote_cell)
        shared = ray.put(runner)
        options: dict[str, Any] = {"num_cpus": 1}
        if runner.executes:
            options.update(resources={self.host_resource: 1.0 / self.real_cells_per_host}, max_retries=1)
        pending = {remote.options(**options).remote(shared, cell): cell for cell in cells}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=WATCH_S)
                if not done:
                    self._check_room(runner.executes)
                    continue
                cell = pending.pop(done[0])
                outcome = _result(ray, done[0], cell)
                if isinstance(outcome, _Failure):
                    raise outcome.exception(cell)
                record(cell, outcome)
        finally:
            for ref in pending:   # a failure or an interrupt: nothing runs on behind the campaign's back
                ray.cancel(ref, force=True)


    @staticmethod
    def _run_spread(cells: list[Any], runner: "CellRunner", record: Callable[[Any, CellResult], None]) -> None:
        """Real cells from the driver, one after the other, on one Ray executor whose workers spread over the nodes."""
        from executor import ExecutorSettings
        from executor.launcher.ray_launcher import RayExecutor

        execute = runner.config.execute
        with RayExecutor(execute.redis_url, ExecutorSettings(**dict(execute.settings))) as executor:
            for cell in cells:
                try:
                    result = runner(cell, executor)
                except PlanlabError as exc:
                    raise type(exc)(f"cell {cell.id}: {exc.what}", exc.fix) from None
                record(cell, result)


def _share_user_files(ray: Any) -> None:
    """Ship the user's Python files (workflows, planners, protocols loaded by path) by value, as the executor does.

    :mod:`planning.pyfiles` registers them with cloudpickle; Ray pickles with its own
    copy of it, so they are registered there too - a node cannot import them by name.
    """
    import sys

    from planning.pyfiles import USER_MODULE_PREFIX

    for name, module in list(sys.modules.items()):
        if name.startswith(USER_MODULE_PREFIX) and module is not None:
            ray.cloudpickle.register_pickle_by_value(module)


@dataclass
class CellRunner:
    """What every cell of a campaign shares, shipped once to the cluster (``ray.put``)."""

    config: Any
    cost_model: Any
    engines: Any
    host: Any
    fit_history: Any
    executes: bool
    run_cell: Callable[..., CellResult]       # the runner's (passed in: this module never imports the runner)
    keep_alive_s: Callable[[Any], float]

    def __call__(self, cell: Any, executor: Any = None) -> CellResult:
        """One cell on this node (with its own executor if it runs for real, unless given one), its saved run
        sent back."""
        import contextlib

        from experiments.host_calibration import WarmPool

        run_cell = self.run_cell
        workflow = self.config.workflow(cell.workflow)
        with contextlib.ExitStack() as stack:
            pool = save_dir = None
            if self.executes:
                executor = executor or stack.enter_context(self.engines.executor(self.config.execute))
                pool = WarmPool(keep_alive_s=self.keep_alive_s(executor))
                save_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="planlab-cell-")))
            tables, row, files = run_cell(cell, self.config, workflow, self.cost_model, self.engines, executor,
                                          host=self.host, pool=pool, save_run_dir=save_dir,
                                          cost_model_history=self.fit_history)
            saved = _read_tree(save_dir) if save_dir is not None else {}
        row["ray_node"] = node_id()
        if "real_workers" in tables and "host" in tables["real_workers"]:
            row["ray_worker_nodes"] = int(tables["real_workers"]["host"].nunique())
        return tables, row, {**files, **{f"{SAVED_RUN_PREFIX}{name}": data for name, data in saved.items()}}


#: Files of a cell's saved run travel with its result under this prefix (the driver writes them to runs/CELL/).
SAVED_RUN_PREFIX = "saved-run/"


def _read_tree(root: Path) -> dict[str, Any]:
    """Every file under ``root`` by its relative path: text when it decodes, else bytes."""
    out: dict[str, Any] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            out[str(path.relative_to(root))] = data.decode()
        except UnicodeDecodeError:
            out[str(path.relative_to(root))] = data
    return out


def split_saved_run(files: dict[str, Any], run_dir: Path) -> dict[str, str]:
    """Write a remote cell's saved run into ``run_dir``; return the cell's own files (for the results store)."""
    own = {}
    for name, data in files.items():
        if not name.startswith(SAVED_RUN_PREFIX):
            own[name] = data
            continue
        path = run_dir / name[len(SAVED_RUN_PREFIX):]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return own


def _result(ray: Any, ref: Any, cell: Any) -> Any:
    """A finished cell's result; a task Ray lost (its node died past the retries, a crash) is one clear error."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExecutionError(f"cell {cell.id}: its Ray task failed ({type(exc).__name__}: {first})",
                             "see the Ray logs (ray status; /tmp/ray/session_latest/logs on the node), then run "
                             "the same command again to resume (finished cells are saved)") from None


@dataclass
class _Failure:
    """A cell's planlab error, carried back as data (Ray's wrapping of exceptions would lose the fix)."""

    kind: type
    what: str
    fix: str | None

    def exception(self, cell: Any) -> PlanlabError:
        return self.kind(f"cell {cell.id}: {self.what}", self.fix)


def _run_remote_cell(runner: CellRunner, cell: Any) -> CellResult | _Failure:
    """The Ray task: one cell; a user-facing error comes back as a :class:`_Failure`."""
    try:
        return runner(cell)
    except PlanlabError as exc:
        return _Failure(type(exc), exc.what, exc.fix)
