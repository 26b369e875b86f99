"""The simulator: run a Plan in simulated time (SimPy) and Monte Carlo SLAs.

``simulate`` interprets the same :class:`planning.protocol.WorkerProtocol` the
executor does and returns the same :class:`planning.trace.Trace`;
``monte_carlo`` propagates duration distributions to the workflow's makespan and
cost.  Fitting the :class:`Platform`'s terms to observed runs is an experiment's
job: :mod:`experiments.calibration`.
"""

from simulator.monte_carlo import MonteCarloResult, monte_carlo
from simulator.platform import Platform
from simulator.simulate import simulate

__all__ = ["MonteCarloResult", "Platform", "monte_carlo", "simulate"]
