"""Calibration: fit the simulator's :class:`~simulator.platform.Platform` terms to real runs.

An experiment's job, not the simulator's: it reads real executions (WfFormat files of
other workflow systems, replayed with the ``recorded`` planner, or planlab's own saved
runs), plans them, simulates them many times and fits the terms that make the
simulated makespans match.

* :mod:`experiments.calibration.executions`: ``calibrate`` on WfFormat executions
  (:class:`Observation`, :class:`CalibrationResult`);
* :mod:`experiments.calibration.fit`: the fit itself (term selection, folds, families);
* :mod:`experiments.calibration.baselines`: the analytic baselines a calibration must beat;
* :mod:`experiments.calibration.prior`: the shipped cross-application prior (``prior.json``),
  learned by :mod:`experiments.calibration.prior_corpus`;
* :mod:`experiments.calibration.trace_calibration`: the host terms fitted on planlab's own runs.
"""

from experiments.calibration.executions import CalibrationResult, Observation, calibrate

__all__ = ["CalibrationResult", "Observation", "calibrate"]
