"""Costs: what a task costs on a profile, learnt from the history of past runs.

* :mod:`planning.costs.history`: the history schema (one row per task run);
* :mod:`planning.costs.cost_model`: the :class:`CostModel` (``fit`` on a history, then estimates at an SLA);
* :mod:`planning.costs.estimates`: the estimates it returns (distributions, a workflow's table);
* :mod:`planning.costs.laws` (the fitting), :mod:`planning.costs.validation` (held-out error) and
  :mod:`planning.costs.summary` (what a fitted model says about itself).
"""
