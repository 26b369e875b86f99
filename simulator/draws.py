"""The sampled noise of one simulated replication: execution seconds and ratio pools."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model import CompiledModel


@dataclass
class Draws:
    """Sampled noise of one replication: per-task execution seconds and ratio pools."""

    exec_s: np.ndarray
    exec_ratio: np.ndarray | None
    download: np.ndarray
    upload: np.ndarray
    cold: np.ndarray
    warm: np.ndarray


def draw(model: CompiledModel, rng: np.random.Generator, run_noise: float = 0.0, noise_scale: float = 1.0,
         run_center: float = 1.0) -> Draws:
    """Sample one replication's durations (a fixed order of RNG calls: reproducible under a seed).

    ``noise_scale`` (the platform's): every sampled ratio ``r`` to its mean (a task's
    execution, a transfer, a start-up) becomes ``1 + noise_scale * (r - 1)`` - the same
    mean, a spread scaled linearly; 1 keeps the measured spread, 0 is the deterministic
    run.  The draws themselves do not change, so a seed stays comparable across scales.

    ``run_noise`` and ``run_center`` (the platform's): one log-normal factor of median
    ``run_center`` and log standard deviation ``run_noise`` multiplies every sampled
    duration of the replication - the host's run-to-run speed, drawn last so a seed's
    other draws do not change.  Given durations (a replay) keep their recorded
    execution times.
    """
    n = max(model.n, 1)
    scale = float(noise_scale)

    def spread(ratios: np.ndarray) -> np.ndarray:
        """The ratios with their deviation from 1 scaled (as drawn at scale 1)."""
        return ratios if scale == 1.0 else 1.0 + scale * (ratios - 1.0)

    if model.durations is not None:
        exec_s, ratio = model.durations, None
    else:
        sampled = model.estimates.sample_exec(rng, model.planned_column)
        base = model.estimates.base_exec_s[np.arange(model.n), model.planned_column]
        ratio = spread(np.divide(sampled, base, out=np.ones_like(sampled), where=base > 0))
        exec_s = sampled if scale == 1.0 else base * ratio
    noise = model.noise()
    pool = 2 * n + len(model.sinks) + 16
    draws = Draws(exec_s, ratio,
                  spread(noise.download[rng.integers(0, len(noise.download), size=pool)]),
                  spread(noise.upload[rng.integers(0, len(noise.upload), size=pool)]),
                  spread(noise.cold[rng.integers(0, len(noise.cold), size=n + 1)]),
                  spread(noise.warm[rng.integers(0, len(noise.warm), size=n + 1)]))
    if run_noise > 0 or run_center != 1.0:
        speed = float(run_center * np.exp(run_noise * rng.standard_normal())) if run_noise > 0 else float(run_center)
        draws = Draws(draws.exec_s if ratio is None else draws.exec_s * speed,
                      None if ratio is None else draws.exec_ratio * speed,
                      draws.download * speed, draws.upload * speed, draws.cold * speed, draws.warm * speed)
    return draws


class RatioPool:
    """Ratios consumed in order (1.0 everywhere when deterministic)."""

    def __init__(self, values: np.ndarray | None) -> None:
        self.values = None if values is None else values.tolist()
        self.k = 0

    def next(self) -> float:
        if self.values is None:
            return 1.0
        v = self.values[self.k % len(self.values)]
        self.k += 1
        return v
