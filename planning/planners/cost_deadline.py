"""``cost-deadline``: minimise cost subject to the planned makespan meeting a deadline.

Right-sizing in the spirit of Orion: workers are placed for locality (as in
``uniform``) and start on the fastest profile.  If even that misses the deadline
the plan is returned marked infeasible with the best achievable makespan.
Otherwise, worker by worker (least busy first, where slack is likeliest), it
moves each to the cheapest profile that keeps the makespan (at the SLA
statistic) within the deadline and lowers the plan's cost, and repeats such
passes until no worker moves.  Deterministic: ties go to the lower worker id.
Greedy, not optimal: an exact minimum is a knapsack-like search.

The search (:mod:`planning.planners.move_search`): a worker whose cheapest
profile fits the schedule's slack alone and lowers its own cost (both checked in
O(its tasks)) joins a batch; the batch is applied in one exact incremental
re-timing and kept if it meets the deadline and saves at least
:data:`BATCH_SAVING` of what its moves promised (so moves that make other
workers wait, and pay for it, do not slip through), else halved.  A worker the
slack check doubts, or a batch turns down, gets the exact one-at-a-time search
(its cheaper profiles, cheapest first) in its place in the order, after the
batch before it.  So the order of decisions is the one-at-a-time search's, and
its re-timings are spent only where the slack cannot decide.  On the shipped
WfFormat files the plans are those of the one-at-a-time search
(benchmarks/results/planning.json compares them).

``max_evaluations`` bounds the trials (deterministically), ``time_budget`` the
search's seconds; either cut is recorded in the plan's notes.  Only the final
plan builds DataFrames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planning.errors import PlanError
from planning.gcpause import paused_gc
from planning.plan import Plan
from planning.planners.base import Planner, register_planner
from planning.planners.move_search import Move, MoveSearch, checked_budgets, kept_blocks, pool_safe_first
from planning.planners.uniform import locality_layout
from planning.profiles import Catalog
from planning.schedule import Retimer, ScheduleEvaluator
from planning.schedule.slack import latest_done, move_fits, worker_chains
from planning.sla import SLA
from planning.workflow import Workflow

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel


#: A batch of moves is kept only if it saves this share of what its moves promised alone: moves that
#: make other workers wait (and so pay for idle time) are tried one at a time instead.  Below 1 so that
#: a batch whose moves cost the others a few idle seconds still goes through in one re-timing.
BATCH_SAVING = 0.995


@register_planner("cost-deadline")
class CostUnderDeadline(Planner):
    """See the module docstring; ``deadline`` is in seconds."""

    def __init__(self, *, deadline: float | None = None, max_evaluations: int | None = None,
                 time_budget: float | None = None) -> None:
        self.time_budget = checked_budgets("cost-deadline", max_evaluations, time_budget)
        self.deadline = deadline
        self.max_evaluations = max_evaluations

    # a search allocates many short-lived lists and no cycles: the collector's walks of the heap are waste
    @paused_gc()
    def plan(self, workflow: Workflow, catalog: Catalog, cost_model: CostModel, sla: SLA) -> Plan:
        if self.deadline is None or self.deadline <= 0:
            raise PlanError("planner 'cost-deadline' needs a positive deadline",
                            "pass --deadline SECONDS (or deadline = SECONDS in the config)")
        estimates = cost_model.estimate_workflow(workflow, catalog, sla)
        worker_of, workers, need = locality_layout(workflow)
        evaluator = ScheduleEvaluator.for_cost_model(workflow, catalog, cost_model, sla)
        layout = evaluator.layout(worker_of)

        def make(assignment: dict[str, str], times) -> Plan:
            """The plan of ``assignment``, whose pooled timing (``times``) the search already made."""
            return Plan.from_assignment(workflow, catalog, estimates, cost_model, sla, worker_of, assignment,
                                        planner=self.name, params=self.params, evaluator=evaluator,
                                        pooled_times=times)

        fastest = catalog.fastest().name
        all_fastest = {w: fastest for w in workers}
        fastest_times = evaluator.run_estimates(layout, all_fastest, estimates, pooled=True)
        if fastest_times.makespan_s > self.deadline:
            plan = make(all_fastest, fastest_times)
            plan.feasible = False
            plan.notes.append(f"infeasible: deadline {self.deadline:g} s, best achievable makespan "
                              f"{plan.makespan_s:.6g} s (all workers on {fastest})")
            return plan
        # The search times without the process pool (every worker cold: fast, and a bound the final plan with
        # its warm starts stays under).  It aims at the deadline stretched by as much as the pool shortens the
        # all-fastest plan; should the final plan miss the deadline, it searches again at the deadline itself;
        # should that miss too (or not run: all fastest timed cold misses the deadline), a few pooled timings
        # keep the blocks of the first search's moves that meet it and save (kept_blocks).
        # (each pooled timing gives up, returning None, once its makespan is sure to miss the deadline)
        def pooled(assignment: dict[str, str]):
            return evaluator.run_estimates(layout, assignment, estimates, pooled=True, limit=self.deadline)

        def keeps(assignment: dict[str, str]) -> bool:
            times = pooled(assignment)
            if times is not None and times.makespan_s <= self.deadline and times.cost(catalog) < cheapest[0]:
                cheapest[:] = [times.cost(catalog), times]
                return True
            return False

        cheapest = [fastest_times.cost(catalog), fastest_times]   # the cheapest kept and its timing
        stretch = Retimer(evaluator, layout, estimates, all_fastest).makespan_s / max(fastest_times.makespan_s, 1e-12)
        first: list[Move] = []
        fallback = None
        for limit in dict.fromkeys((self.deadline * max(stretch, 1.0), self.deadline)):
            profile = dict(all_fastest)
            timing = Retimer(evaluator, layout, estimates, profile)
            search = MoveSearch(timing, max_evaluations=self.max_evaluations, time_budget=self.time_budget)
            if timing.makespan_s <= limit:
                _CheapestMoves(search, catalog, workers, need, profile, limit).run()
            final = pooled(profile)
            if final is not None and final.makespan_s <= self.deadline:
                break
            first = first or [(w, p) for w, p in profile.items() if p != fastest]
        else:
            searched = len([p for p in profile.values() if p != fastest]) or len(first)
            # the first search's plan is all of ``first``, and missed the deadline on its pooled timing
            profile = kept_blocks(all_fastest, pool_safe_first(first, fastest_times), keeps, whole_missed=True)
            final = cheapest[1]
            fallback = (f"the searches' plans ({searched} moves, timed cold) missed the deadline on the "
                               f"pooled timing: kept {sum(p != fastest for p in profile.values())} moves whose "
                               f"pooled plan meets it")
        plan = make(profile, final)
        plan.notes.append(f"deadline {self.deadline:g} s met with makespan {plan.makespan_s:.6g} s "
                          f"({search.evaluations} schedule evaluations, {search.passes_text}, "
                          f"{search.retimings} exact re-timings)")
        if fallback is not None:
            plan.notes.append(fallback)
        plan.notes.extend(search.notes("cheaper plans may exist"))
        return plan


class _CheapestMoves:
    """The search of one plan: passes of moves, least busy worker first, each to its cheapest profile that is kept."""

    def __init__(self, search: MoveSearch, catalog: Catalog, workers: list[str], need: dict[str, float],
                 profile: dict[str, str], deadline: float) -> None:
        self.search, self.timing, self.catalog = search, search.timing, catalog
        self.workers, self.need, self.profile, self.deadline = workers, need, profile, deadline
        self.chains = worker_chains(self.timing)
        self.number = {w: k for k, w in enumerate(self.timing.layout.workers)}
        self.by_price = catalog.by_price()
        self.cost = self.timing.cost(catalog)
        self.saving: dict[Move, float] = {}      # each proposal's predicted saving (a lower bound when alone)

    def run(self) -> None:
        """Passes until one keeps no move (or a budget cuts the search)."""
        while self.search.cut is None and self._one_pass():
            pass

    def _one_pass(self) -> bool:
        search, timing, number = self.search, self.timing, self.number
        search.passes += 1
        changed = False
        latest = latest_done(timing, self.deadline)
        batch: list[Move] = []
        for w in sorted(self.workers, key=lambda w: (timing.busy_s[number[w]], int(w[1:]))):  # least busy first
            proposal = self._proposal(w, latest)
            if proposal is not None:
                batch.append((w, proposal))
            elif self.candidates(w) and search.cut is None:   # the slack check doubts the cheapest: try exactly
                if self._flush(batch) | self._exact(w):
                    changed = True
                    latest = latest_done(timing, self.deadline)
            if search.cut is not None:
                break
        return self._flush(batch) or changed

    def candidates(self, w: str) -> list[str]:
        """The profiles cheaper than the worker's that hold its memory, cheapest first."""
        price = self.catalog[self.profile[w]].price_per_s
        return [p.name for p in self.by_price if p.price_per_s < price and p.memory_mb >= self.need[w]]

    def _proposal(self, w: str, latest: list[float]) -> str | None:
        """The worker's cheapest candidate if the slack check passes it and its own cost falls; else None."""
        candidates = self.candidates(w)
        if not candidates or not self.search.trial():
            return None
        timing, k, name = self.timing, self.number[w], candidates[0]
        own = (timing.worker_stop_s[k] - timing.worker_start_s[k]) * self.catalog[self.profile[w]].price_per_s
        fits, stop = move_fits(timing, self.chains[k], timing.column[name], timing.evaluator.startup_of(name), latest)
        new_cost = (stop - timing.worker_start_s[k]) * self.catalog[name].price_per_s
        if fits and new_cost < own:
            self.saving[(w, name)] = own - new_cost
            return name
        return None

    def _cheaper(self, makespan: float, part: list[Move]) -> bool:
        """Within the deadline and cheaper; a batch only if it saves :data:`BATCH_SAVING` of its promise."""
        trial = self.timing.cost(self.catalog)
        promised = BATCH_SAVING * sum(self.saving.get(move, 0.0) for move in part) if len(part) > 1 else 0.0
        if makespan <= self.deadline and trial < self.cost and self.cost - trial >= promised:
            self.cost = trial
            return True
        return False

    def _exact(self, w: str, skip: str | None = None) -> bool:
        """The one-at-a-time search for one worker: its cheapest profile that is kept, re-timed exactly."""
        for name in self.candidates(w):
            if name != skip and self.search.trial() and self.search.settle([(w, name)], self._cheaper):
                self.profile[w] = name
                return True
        return False

    def _flush(self, batch: list[Move]) -> bool:
        """Settle the batch; a worker it turns down gets the exact search in its place in the order."""
        fallbacks: list[bool] = []
        kept = self.search.settle(batch, self._cheaper, lambda move: fallbacks.append(self._exact(*move)))
        self.profile.update(kept)
        batch.clear()
        return bool(kept) or any(fallbacks)
