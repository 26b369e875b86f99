"""The search both profile-moving planners share: propose moves by slack, confirm them exactly, within budgets.

``critical-path`` and ``cost-deadline`` move workers between profiles while the
planned makespan stays within a limit.  Trying one move at a time with an exact
re-timing each costs O(workers x profiles) re-timings, which grows faster than
the workflow (each re-timing reaches more tasks in a larger one).  Instead each
*pass* proposes at most one move per worker, checked in O(its tasks) against the
slack of the schedule at the start of the pass
(:func:`~planning.schedule.slack.move_fits`), then :meth:`MoveSearch.settle`
applies the proposals together in one exact incremental re-timing
(:class:`~planning.schedule.Retimer`).  Moves that are each fine alone can
together break the limit (they share a path's slack).  Halving such a batch
degenerated where the slack ran out (seed 0 of a 10k-task random layered DAG:
hundreds of conflicts, each a whole re-timing per halving, 32 s): instead
:func:`overshooting` walks back from each sink past the limit and gives back the
moves latest in the batch's order until what they added covers the overshoot
(the moves a one-at-a-time search in that order would turn down on that path);
the rest is re-timed again (a deferred move is proposed again next pass, against
the slack then).  A single move's re-timing stops at the first task past its
latest time (:meth:`~planning.schedule.Retimer.change`): a rejected move costs
little.  A few passes, each O(n + e) plus a few re-timings, instead of one
re-timing per trial.

Budgets: ``max_evaluations`` counts proposals (deterministic); ``time_budget``
bounds the search's wall-clock seconds (not the estimates before it nor the final
plan's DataFrames after it; a re-timing under way finishes).  Either stops the
search with the plan confirmed so far - always within the limit - and
:attr:`MoveSearch.cut` says which budget stopped it, for the plan's notes.

Where the slack cannot decide - no slack to speak of (``critical-path`` with
``tolerance = 0``, a deadline at the fastest makespan) - nearly every move is
tried alone, exactly, and the search costs what the one-at-a-time search did;
``time_budget`` is the bound to use then.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence, cast

from planning.errors import PlanError
from planning.schedule import Retimer, ScheduleTimes

Move = tuple[str, str]      # (worker id, profile name)

#: A batch of this many moves or more is re-timed in one whole pass (its delays tend to reach most of
#: the workflow, and a whole pass costs about a third of the incremental re-timing per task).
WHOLE_BATCH = 8


def checked_budgets(planner: str, max_evaluations: int | None, time_budget: float | None) -> float | None:
    """Validate the two budgets (one-line errors naming the fix); returns the time budget as a float."""
    if max_evaluations is not None and max_evaluations < 1:
        raise PlanError(f"{planner}: max_evaluations must be >= 1, got {max_evaluations!r}",
                        "give a positive number of schedule evaluations, or none for no limit")
    if time_budget is None:
        return None
    try:
        seconds = float(time_budget)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (seconds > 0 and seconds != float("inf")):
        raise PlanError(f"{planner}: time_budget must be a positive number of seconds, got {time_budget!r}",
                        "give e.g. --time-budget 0.5 (or time_budget = 0.5 in the config), or none for no limit")
    return seconds


#: Pooled timings :func:`kept_blocks` spends at most (each a whole pass in time order, O((n + e) log n)).
POOLED_CHECKS = 4


def kept_blocks(start: dict[str, str], made: Sequence[Move], keeps: Callable[[dict[str, str]], bool], *,
                whole_missed: bool = False) -> dict[str, str]:
    """``start`` with the blocks of ``made`` that ``keeps`` accepts: the whole list, then halves (the first first, on
    top of what was kept) while :data:`POOLED_CHECKS` checks last.  ``whole_missed``: the caller's own check of
    ``start`` with all of ``made`` was turned down already - it counts as the first check, not asked again (each
    check is a whole pooled timing).

    For a plan whose final (pooled) timing misses what the cold search promised:
    the pooled timing is not monotone in the moves (a move can cost another
    worker its warm start), so this keeps what a few exact checks confirm rather
    than searching; ``start`` must keep the promise.  ``keeps`` is asked each
    assignment once, in this order, and may remember the last one it accepted.
    """
    kept: dict[str, str] = {}
    pending = [list(made)] if made else []
    for check in range(POOLED_CHECKS):
        if not pending:
            break
        part = pending.pop()
        if not (whole_missed and check == 0) and keeps({**start, **kept, **dict(part)}):
            kept.update(part)
        elif len(part) > 1:
            half = len(part) // 2
            pending.append(part[half:])
            pending.append(part[:half])
    return {**start, **kept}


def pool_safe_first(made: Sequence[Move], pooled: ScheduleTimes) -> list[Move]:
    """The moves, those least likely to cost a warm start first (the order :func:`kept_blocks` tries them in).

    Workers that started cold in the ``pooled`` timing of the plan moved from
    come first (moving one that started warm makes it start cold), latest to stop
    first (a process freed late is taken by fewer workers); stable within a
    worker, so its rungs stay in order.
    """
    number = {w: k for k, w in enumerate(pooled.layout.workers)}
    reused = pooled.reused or (False,) * len(number)
    return sorted(made, key=lambda move: (reused[number[move[0]]], -pooled.worker_stop_s[number[move[0]]]))


def overshooting(timing: Retimer, moves: Sequence[Move], before: dict[str, str], limit: float) -> list[Move]:
    """Moves to take back so the makespan, now past ``limit``, may return within it: the latest in order first.

    ``timing`` holds ``moves`` applied to a state within the limit (``before``:
    the moved workers' profiles then).  From every sink past the limit the walk
    follows what delayed each start (the later of the last parent and the task
    before on the worker) and adds up, per move, what the move lengthened on
    that path; the moves latest in the batch's order are taken back until what
    they added covers the overshoot - the moves a one-at-a-time search in that
    order would have turned down on this path.  O(length of those paths); the
    caller re-times without them, and goes on from there if another path is
    then past the limit.
    """
    ev, lay = timing.evaluator, timing.layout
    done, prev, parents, fetch = timing.done, lay.prev, ev.parents, ev.fetch_s
    rank = {move[0]: k for k, move in enumerate(moves)}
    workers, table, column = lay.workers, timing.exec_table, timing.column
    dropped: dict[str, float] = {}
    for k, sink in enumerate(ev.sinks):
        over = done[sink] + fetch[k] - limit
        if over <= 0.0:
            continue
        added: dict[str, float] = {}
        i = sink
        while i >= 0:
            w = workers[lay.worker[i]]
            if w in rank:
                old = before[w]
                grew = timing.exec_s[i] - table[i][column[old]]
                if prev[i] < 0:
                    grew += timing.startup[i] - timing.startup_for(lay.worker[i], old)
                added[w] = added.get(w, 0.0) + grew
            ps, j = parents[i], prev[i]
            data = max(ps, key=done.__getitem__) if ps else -1
            i = data if data >= 0 and (j < 0 or done[data] >= done[j]) else j
        over -= sum(added.get(w, 0.0) for w in dropped)
        for w in sorted(added, key=rank.__getitem__, reverse=True):
            if over <= 0.0:
                break
            if w not in dropped and added[w] > 0.0:
                dropped[w] = added[w]
                over -= added[w]
    return [move for move in moves if move[0] in dropped]


class SearchBudget:
    """Counts a search's trials and passes and stops it at ``max_evaluations`` or ``time_budget`` (see the module
    docstring); :attr:`cut` says which budget stopped it, :meth:`notes` says so in a plan's notes."""

    def __init__(self, *, max_evaluations: int | None = None, time_budget: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.max_evaluations = max_evaluations
        self.time_budget = time_budget
        self._clock = clock
        self._started = clock()
        self._stop_at = self._started + time_budget if time_budget is not None else None
        self.evaluations = 1            # the first timing counts, as a full evaluation would
        self.passes = 0
        self.cut: str | None = None     # "max_evaluations" or "time_budget" once one stopped the search

    @property
    def seconds(self) -> float:
        """Seconds since the search began (on its clock)."""
        return self._clock() - self._started

    @property
    def passes_text(self) -> str:
        """``"1 pass"``, ``"3 passes"``: for the plan's notes."""
        return f"{self.passes} pass" if self.passes == 1 else f"{self.passes} passes"

    def _out_of_time(self) -> bool:
        if self._stop_at is not None and self._clock() > self._stop_at:
            self.cut = "time_budget"
        return self.cut == "time_budget"

    def trial(self) -> bool:
        """Count one trial; False (and :attr:`cut` set) once a budget is spent."""
        if self.cut is not None:
            return False
        if self.max_evaluations is not None and self.evaluations >= self.max_evaluations:
            self.cut = "max_evaluations"
            return False
        if self._out_of_time():
            return False
        self.evaluations += 1
        return True

    def notes(self, consequence: str) -> list[str]:
        """What stopped the search early, if anything, and ``consequence`` (the last of the plan's notes)."""
        if self.cut == "max_evaluations":
            return [f"stopped at max_evaluations={self.max_evaluations}: {consequence}"]
        if self.cut == "time_budget":
            return [f"stopped at time_budget={self.time_budget:g} s (the time budget cut the search in pass "
                    f"{self.passes}): {consequence}"]
        return []


class MoveSearch(SearchBudget):
    """Applies batches of moves exactly to ``timing``, within the budgets it counts (see the module docstring).

    ``max_work``: tasks re-timed (:attr:`work`) after which :meth:`trial` refuses and
    :meth:`settle` stops, without :attr:`cut` (a bound of the caller's own rule, not
    the user's budgets); None: no bound.  ``timing`` may be None until the caller
    sets the re-timer to search with.
    """

    def __init__(self, timing: Retimer | None, *, max_evaluations: int | None = None,
                 time_budget: float | None = None, clock: Callable[[], float] = time.perf_counter,
                 max_work: int | None = None) -> None:
        super().__init__(max_evaluations=max_evaluations, time_budget=time_budget, clock=clock)
        self.timing: Retimer = cast(Retimer, timing)     # set before the first settle when None here
        self.retimings = 0
        self.max_work = max_work
        self.work = 0                   # tasks re-timed so far (its caller may add the whole timings it makes)

    def out_of_work(self) -> bool:
        """Whether :attr:`work` reached ``max_work``."""
        return self.max_work is not None and self.work >= self.max_work

    def trial(self) -> bool:
        """:meth:`SearchBudget.trial`, refused (uncounted) once out of work."""
        return not self.out_of_work() and super().trial()

    def settle(self, moves: Sequence[Move], acceptable: Callable[[float, list[Move]], bool],
               turned_down: Callable[[Move], None] | None = None, *, limit: float | None = None,
               latest: Sequence[float] | None = None, deferred: list[Move] | None = None) -> list[Move]:
        """Apply ``moves`` with exact re-timings, keeping a batch only if ``acceptable(makespan, batch)``.

        A rejected batch whose makespan broke ``limit`` is split by blame
        (:func:`blamed`): the others go first as one batch (a move off every path
        that broke the limit cannot have broken it), then the moves blamed, one by
        one - or, given a ``deferred`` list, they go there untried, for the next
        pass to propose again against its fresh slack (trying them one by one
        costs a re-timing of all each accepted move reaches, and where the slack
        ran out that is most of the workflow).  A batch rejected otherwise (or
        that blames all or none of its moves) is halved and each half tried, the
        first one first.  A rejected single move is dropped, and
        ``turned_down(move)`` called right then, before the moves after it (a
        search can try that worker's other profiles in its place in the order).
        ``latest`` (:func:`~planning.schedule.slack.latest_done` at ``limit`` of
        the state before ``moves``) lets a single move's re-timing stop where it
        breaks the limit.  Stops, keeping what was confirmed, when the time
        budget runs out.
        """
        timing, kept = self.timing, []
        pending = [list(moves)] if moves else []
        while pending:
            part = pending.pop()
            if self._out_of_time() or self.out_of_work():
                break
            self.retimings += 1
            single = len(part) == 1
            slows = latest is not None and (single or timing.only_slows(dict(part)))
            before = {w: timing.profile_of(w) for w, _ in part}
            makespan = timing.change(dict(part), whole=len(part) >= WHOLE_BATCH, latest=latest if single else None)
            self.work += timing.retimed
            slows = slows and (timing.bounded or not single)
            if acceptable(makespan, part):
                timing.commit()
                kept.extend(part)
                if not slows:
                    latest = None       # a move that shortened something: ``latest`` no longer bounds
                continue
            suspects = (overshooting(timing, part, before, limit)
                        if len(part) > 1 and limit is not None and makespan > limit else [])
            timing.rollback()
            if 0 < len(suspects) < len(part):
                if deferred is not None:
                    deferred.extend(suspects)
                else:
                    pending.extend([move] for move in reversed(suspects))
                blame = set(suspects)
                pending.append([move for move in part if move not in blame])
            elif len(part) > 1:
                half = len(part) // 2
                pending.append(part[half:])
                pending.append(part[:half])
            elif turned_down is not None:
                turned_down(part[0])
        return kept

    def settle_whole(self, moves: Sequence[Move],
                     acceptable: Callable[[float, list[Move]], bool]) -> list[Move] | None:
        """All of ``moves`` in one exact re-timing: kept (returned) if ``acceptable``, else rolled back (None).

        The first try of a pass whose proposals are all one-rung downgrades: when
        together they keep the limit, each alone would too (downgrades only slow,
        and the schedule is monotone), so the slack's split (:meth:`settle` of
        those that fit, :meth:`settle_each` of the others) would keep them all -
        at the cost of a backward pass and a check per worker this skips.  No
        moves, or no time left: nothing to keep (``[]``).
        """
        if not moves or self._out_of_time():
            return []
        self.retimings += 1
        part = list(moves)
        makespan = self.timing.change(dict(part), whole=len(part) >= WHOLE_BATCH)
        self.work += self.timing.retimed
        if acceptable(makespan, part):
            self.timing.commit()
            return part
        self.timing.rollback()
        return None

    def settle_each(self, moves: Sequence[Move], acceptable: Callable[[float, list[Move]], bool], *,
                    latest: Sequence[float] | None = None) -> list[Move]:
        """:meth:`settle` one move at a time, in order: for moves the slack check doubts (it is conservative)."""
        kept: list[Move] = []
        for move in moves:
            kept += self.settle([move], acceptable, latest=latest)
        return kept
