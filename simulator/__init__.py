"""The simulator: run a Plan in simulated time (SimPy), Monte Carlo SLAs, calibration to real runs.

``simulate`` interprets the same :class:`planning.protocol.WorkerProtocol` the
executor does and returns the same :class:`planning.trace.Trace`;
``monte_carlo`` propagates duration distributions to the workflow's makespan and
cost; ``calibrate`` fits the :class:`Platform`'s overhead terms to observed runs.
"""

from simulator.platform import Platform
from simulator.calibration import CalibrationResult, Observation, calibrate
from simulator.monte_carlo import MonteCarloResult, monte_carlo
from simulator.simulate import simulate

__all__ = ["CalibrationResult", "MonteCarloResult", "Observation", "calibrate", "Platform", "monte_carlo", "simulate"]
