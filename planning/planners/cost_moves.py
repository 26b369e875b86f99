"""The exact improvement pass of ``cost-deadline``: workers one at a time to a cheaper profile, each move re-timed.

From the plan :mod:`planning.planners.deadline_levels` builds, worker by worker
(least busy first, where slack is likeliest) each moves to the cheapest profile
that lowers its own cost (the rest of the plan as it is), keeps the makespan
within the deadline and lowers the plan's cost; passes repeat until no worker
moves.  This is the search ``cost-deadline`` was before the construction: alone,
from the all-fastest plan, it paid a cold start per moved worker and stopped far
above the construction's cost on large random DAGs, but on small workflows
(WfFormat files, tight deadlines) where no cheaper level meets the deadline its
moves that use the deadline's slack save what moves that delay nobody cannot.

What it times: the plan as the process pool runs it.  Each worker keeps the
start-up the starting plan's pooled timing gives it until it is moved, and then
pays its new profile's cold start; a move can still cost a later worker the warm
start it took from the moved one's process, which the search does not see, so the
result is timed with the pool and, should it miss the deadline or save nothing, a
few pooled timings keep the blocks of the search's moves that meet it.

The search (:mod:`planning.planners.move_search`): a worker whose cheapest
profile fits the schedule's slack alone and lowers its own cost (both checked in
O(its tasks)) joins a batch; the batch is applied in one exact incremental
re-timing and kept if it meets the deadline and saves at least
:data:`BATCH_SAVING` of what its moves promised.  A worker the slack check
doubts, or whose batch is turned down, gets the exact one-at-a-time search (its
cheaper profiles, cheapest first) in its place in the order, which re-times only
the moves its worker's own tasks cannot settle
(:func:`~planning.schedule.slack.moved_alone`) and skips a move found late before.
So the order of decisions is the one-at-a-time search's
(``benchmarks/_one_at_a_time.py``, compared in benchmarks/results/planning.json).

Its work is bounded: re-timing is what it spends, and where moves reach far
(10k-task random layered DAGs: tens of seconds unbounded) it stops after timing
:data:`WORK` tasks, keeping what it confirmed - a deterministic bound, whatever the
workflow's size.  A workflow too large for the bound to cover one round
(:data:`ROUND_WORK` whole timings) is not searched at all: on random layered DAGs
of 2k-10k tasks (seeds 0-4) the pass, bounded in proportion to the workflow (2
tasks timed per task and 20k more), changed no plan's cost at all and took a
quarter of the planner's time at 10k.  The WfFormat files (up to ~100 tasks) need
at most ~10k tasks timed: they are searched to the end.
"""

from __future__ import annotations

from planning.planners.deadline_levels import pooled_within
from planning.planners.move_search import Move, MoveSearch, kept_blocks, pool_safe_first
from planning.profiles import Catalog
from planning.schedule import Retimer, ScheduleEvaluator, ScheduleTimes
from planning.schedule.slack import latest_done, move_fits, moved_alone, worker_chains

#: A batch of moves is kept only if it saves this share of what its moves promised alone: moves that
#: make other workers wait (and so pay for idle time) are tried one at a time instead.  Below 1 so that
#: a batch whose moves cost the others a few idle seconds still goes through in one re-timing.
BATCH_SAVING = 0.995

#: Tasks the pass times at most: re-timed, timed whole (one per task), passed backwards for the slack (one per
#: task) or re-timed alone for a move's check (its worker's tasks).
WORK = 20_000

#: Whole timings a round needs before its first move (the held timing, the slack's backward pass, the pooled
#: check of its result): a workflow whose tasks times this exceed :data:`WORK` is not searched.
ROUND_WORK = 3

#: Searches at most, each holding the start-ups the pool gives the plan the one before ended with: moving a
#: worker can take from a later one the warm start it had on the moved one's process, and only the next search
#: sees that later worker as cold (and so worth moving too).
REPIN_ROUNDS = 4


def own_move(timing: Retimer, chain: list[int], k: int, price: float, name: str, new_price: float,
             latest: list[float] | None) -> tuple[bool, bool]:
    """Worker number ``k`` (its tasks ``chain``, on a profile of ``price``) moved to profile ``name`` (of
    ``new_price``) with the rest of the plan as it is (:func:`~planning.schedule.slack.moved_alone`): whether its
    own tasks prove the move late (against ``latest``; None: not checked), and whether it lowers the worker's own
    cost.  For a move that only slows; the rule the search, and its one-at-a-time reference, decide a move by
    before re-timing it (a move that does not lower its worker's own cost is not tried)."""
    misses, stop = moved_alone(timing, chain, timing.column[name], timing.startup_for(k, name), latest)
    own = (timing.worker_stop_s[k] - timing.worker_start_s[k]) * price
    return misses, (stop - timing.worker_start_s[k]) * new_price < own


def first_startups(times: ScheduleTimes) -> list[float]:
    """Each worker number's start-up in ``times`` (its first task's): what a search holds while the worker stays."""
    layout = times.layout
    startups = [0.0] * len(layout.workers)
    for i, before in enumerate(layout.prev):
        if before < 0:
            startups[layout.worker[i]] = times.startup[i]
    return startups


class CheapestMoves:
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
        self._latest: list[float] | None = None  # latest_done of a state no slower anywhere than the current one
        self._late: set[Move] = set()            # moves that broke the deadline from a state no slower anywhere
        self._was_late = False                   # whether the last move :meth:`_cheaper` turned down was late
        self._kept = 0                           # changes kept so far: the state's version
        self._turned_down: dict[Move, int] = {}  # each move the exact search turned down, at which version

    def run(self) -> None:
        """Passes until one keeps no move (or a budget cuts the search)."""
        while self.search.cut is None and self._one_pass():
            pass

    def _one_pass(self) -> bool:
        search, timing, number = self.search, self.timing, self.number
        search.passes += 1
        changed = False
        self._latest = None         # taken when first asked (:meth:`latest`), and again after each change kept
        batch: list[Move] = []
        for w in sorted(self.workers, key=lambda w: (timing.busy_s[number[w]], int(w[1:]))):  # least busy first
            proposal = self._proposal(w, self.latest())
            if proposal is not None:
                batch.append((w, proposal))
            elif self.candidates(w) and search.cut is None:   # the slack check doubts the cheapest: try exactly
                if self._flush(batch) | self._exact(w):
                    changed = True
                    self._latest = None
            if search.cut is not None:
                break
        return self._flush(batch) or changed

    def latest(self) -> list[float]:
        """Per task, the latest it may be done for the plan to meet the deadline, the rest unchanged.

        Taken in the state after the last kept move; a later move that only slowed
        (:meth:`~planning.schedule.Retimer.only_slows`) leaves it a valid bound (the
        schedule is monotone), so it is re-taken only after one that did not.
        """
        if self._latest is None:
            self._latest = latest_done(self.timing, self.deadline)
            self.search.work += len(self._latest)           # a backward pass over every task
        return self._latest

    def _settle(self, moves: list[Move], turned_down=None) -> list[Move]:
        """:meth:`MoveSearch.settle` of ``moves``, a single move's re-timing stopping where it breaks the deadline."""
        if not self.timing.only_slows(dict(moves)):
            self._latest = None         # taken again, when next asked, in the state the kept moves leave
            self._late.clear()          # and a move late before may not be late after
            return self.search.settle(moves, self._cheaper, turned_down)
        return self.search.settle(moves, self._cheaper, turned_down, latest=self.latest())

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
        fits, stop = move_fits(timing, self.chains[k], timing.column[name], timing.startup_for(k, name), latest)
        self.search.work += len(self.chains[k])
        new_cost = (stop - timing.worker_start_s[k]) * self.catalog[name].price_per_s
        if fits and new_cost < own:
            self.saving[(w, name)] = own - new_cost
            return name
        return None

    def _cheaper(self, makespan: float, part: list[Move]) -> bool:
        """Within the deadline and cheaper; a batch only if it saves :data:`BATCH_SAVING` of its promise."""
        self._was_late = makespan > self.deadline
        trial = self.timing.cost(self.catalog)
        promised = BATCH_SAVING * sum(self.saving.get(move, 0.0) for move in part) if len(part) > 1 else 0.0
        if makespan <= self.deadline and trial < self.cost and self.cost - trial >= promised:
            self.cost = trial
            self._kept += 1
            return True
        return False

    def _exact(self, w: str) -> bool:
        """The one-at-a-time search for one worker: its cheapest profile that is kept, re-timed exactly.

        Not re-timed: a move that does not lower the worker's own cost with the rest
        of the plan as it is (:func:`~planning.schedule.slack.moved_alone`: the search
        right-sizes workers; a move paid for by the idle time it spares others is not
        tried), one its own tasks prove late, one found late before (every kept move
        since only slowed, and the schedule is monotone: it is late still), and one
        turned down with no change kept since (the same state, the same answer: most
        of a search's last pass).
        """
        timing, k = self.timing, self.number[w]
        for name in self.candidates(w):
            move = (w, name)
            if move in self._late or self._turned_down.get(move) == self._kept or not self.search.trial():
                continue
            self._turned_down[move] = self._kept    # until kept below: nothing changed since, the same answer
            if timing.only_slows({w: name}):
                self.search.work += len(self.chains[k])
                misses, lowers = own_move(timing, self.chains[k], k, self.catalog[self.profile[w]].price_per_s, name,
                                          self.catalog[name].price_per_s, self._latest)
                if misses:
                    self._late.add(move)
                    continue
                if not lowers:
                    continue
                if self._settle([move]):
                    self.profile[w] = name
                    return True
                if self._was_late:
                    self._late.add(move)
            elif self._settle([move]):
                self.profile[w] = name
                return True
        return False

    def _flush(self, batch: list[Move]) -> bool:
        """Settle the batch in one re-timing; if it is turned down, each of its workers gets the exact search, in
        order (halving a batch that is turned down cost a re-timing of most of the workflow per half, and few
        halves were kept where the moves share their paths' slack)."""
        moves, kept = list(batch), None
        batch.clear()
        if len(moves) > 1 and self.timing.only_slows(dict(moves)):
            kept = self.search.settle_whole(moves, self._cheaper)
        if kept:
            self.profile.update(kept)
            return True
        changed = False
        for w, _ in moves:
            if self.search.cut is not None:
                break
            changed |= self._exact(w)
        return changed


def improve(evaluator: ScheduleEvaluator, layout, estimates, catalog: Catalog, need: dict[str, float],
            profile: dict[str, str], final: ScheduleTimes, deadline: float,
            search: MoveSearch) -> tuple[dict[str, str], ScheduleTimes, list[str]]:
    """Rounds of the exact search from ``profile`` (its pooled timing ``final``, within ``deadline``): the assignment,
    its pooled timing and notes.  Every whole timing counts as one task's work per task of ``search``'s."""
    workers = list(layout.workers)

    def pooled(assignment: dict[str, str]) -> ScheduleTimes | None:
        search.work += len(evaluator.ids)
        return pooled_within(evaluator, layout, estimates, assignment, deadline)

    def held(assignment: dict[str, str], times: ScheduleTimes) -> Retimer:
        """``assignment`` timed with the start-ups the pool gives it (``times``: its pooled timing) held."""
        search.work += len(times.done)
        return Retimer(evaluator, layout, estimates, assignment, kept_startups=first_startups(times))

    def keeps(assignment: dict[str, str]) -> bool:
        if search.out_of_work():
            return False
        times = pooled(assignment)
        if times is not None and times.cost(catalog) < cheapest[0]:
            cheapest[:] = [times.cost(catalog), times]
            return True
        return False

    notes: list[str] = []
    if search.max_work is not None and ROUND_WORK * len(evaluator.ids) > search.max_work - search.work:
        return profile, final, [f"no exact pass: {len(evaluator.ids)} tasks, more than its work bound "
                                f"({search.max_work} tasks timed) covers in a round"]
    profile = dict(profile)
    for _ in range(REPIN_ROUNDS):
        if search.cut is not None or search.out_of_work():
            break
        search.timing = held(profile, final)    # held at the start-ups the pool gives the plan it starts from
        before = dict(profile)
        CheapestMoves(search, catalog, workers, need, profile, deadline).run()
        if profile == before:
            break
        timed = pooled(profile)
        if timed is None or timed.cost(catalog) >= final.cost(catalog):
            moved = [(w, p) for w, p in profile.items() if p != before[w]]
            cheapest = [final.cost(catalog), final]     # the cheapest kept and its timing
            profile = kept_blocks(before, pool_safe_first(moved, final), keeps, whole_missed=True)
            final = cheapest[1]
            notes.append(f"the exact search's plan ({len(moved)} moves) missed the deadline or saved nothing on the "
                         f"pooled timing (a moved worker's process no longer warms a later one): kept "
                         f"{sum(p != before[w] for w, p in profile.items())} of those moves, whose pooled plan "
                         f"meets it")
            break
        final = timed
    if search.out_of_work():
        notes.append(f"the exact search stopped at its work bound ({search.max_work} tasks timed)")
    return profile, final, notes
