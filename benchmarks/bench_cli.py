"""The command line's start-up, recorded in ``benchmarks/results/cli.json``.

Run: ``python benchmarks/bench_cli.py [--runs N] [--baseline DIR] [--out FILE]``.

Times ``planlab --help`` and ``planlab inspect gen:chain --json`` (targets on a quiet
2-vCPU machine: <= 0.3 s and <= 0.6 s) as a user runs them: the installed ``planlab``
script in a fresh process, each run's wall time, CPU time (user + system) and peak RSS
(``wait4``).  The runs are interleaved round by round, in a shuffled order, with two
floors beside them: ``python -c pass`` (the interpreter alone) and
``import numpy, networkx`` (what a workflow needs, so the floor of ``inspect``).
``--baseline DIR`` runs the same script against another checkout of planlab (its
folder first on ``PYTHONPATH``), interleaved with the others, so a before/after ratio
is measured under the same load.

The machine is shared: the load average is sampled before, during (each round) and
after, with the CPU probe of :mod:`experiments.hostload`; the CPU times are less
sensitive to the load than the wall times, so both are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.hostload import cpu_probe_s
from experiments.provenance import git_revision

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "cli.json"
#: The commands timed, as ``planlab`` arguments, and their targets (median wall seconds).
COMMANDS: dict[str, list[str]] = {"help": ["--help"], "inspect": ["inspect", "gen:chain", "--json"]}
TARGETS = {"help": 0.3, "inspect": 0.6}
#: What no planlab command can go below: the interpreter, and the libraries a workflow needs.
FLOORS: dict[str, list[str]] = {"python": ["-c", "pass"], "numpy_networkx": ["-c", "import numpy, networkx"]}
#: GNU time (its ``-f`` and ``-o``), which measures a process's CPU time and peak RSS.
GNU_TIME = "/usr/bin/time"


def planlab_script() -> Path:
    """The ``planlab`` console script of this interpreter's environment (what a user runs)."""
    beside = Path(sys.executable).parent / "planlab"
    found = beside if beside.is_file() else shutil.which("planlab")
    if not found:
        raise SystemExit("bench_cli: no 'planlab' script beside this Python; install planlab (pip install -e .)")
    return Path(found)


def run_once(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """One fresh process: wall seconds, CPU seconds (user + system) and peak RSS in MiB; it must exit 0.

    The process is started by GNU ``time``, which reports its CPU and peak RSS: Linux keeps
    the high-water RSS of the address space a child is forked from across ``exec``, so a
    child started directly by this (larger) Python would report at least this one's RSS.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-f", "%U %S %M", "-o", report.name, *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"bench_cli: {' '.join(argv)} exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace').strip()[:300]}")
        user, system, rss_kib = report.read().split()[-3:]
    return {"wall_s": wall, "cpu_s": float(user) + float(system), "rss_mib": float(rss_kib) / 1024}


def variants(script: Path, baseline: Path | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every timed process: label -> (argv, environment)."""
    here = dict(os.environ)
    here.pop("PYTHONPATH", None)
    out = {name: ([sys.executable, str(script), *args], here) for name, args in COMMANDS.items()}
    out.update({f"floor_{name}": ([sys.executable, *args], here) for name, args in FLOORS.items()})
    if baseline is not None:
        before = here | {"PYTHONPATH": str(baseline)}
        out.update({f"baseline_{name}": ([sys.executable, str(script), *args], before)
                    for name, args in COMMANDS.items()})
    return out


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    walls = [s["wall_s"] for s in samples]
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "cpu_median_s": statistics.median(s["cpu_s"] for s in samples),
            "peak_rss_mib": max(s["rss_mib"] for s in samples), "runs_s": walls}


def measure(runs: int, script: Path, baseline: Path | None, seed: int) -> tuple[dict[str, Any], list[float]]:
    """``runs`` rounds; each runs every variant once, in a shuffled order. Returns summaries and the 1-min loads."""
    todo = variants(script, baseline)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label in todo}
    order, loads = list(todo), []
    rng = random.Random(seed)
    for label, (argv, env) in todo.items():     # one warm-up each: file caches, not measured
        run_once(argv, env)
    for _ in range(runs):
        rng.shuffle(order)
        for label in order:
            samples[label].append(run_once(*todo[label]))
        loads.append(os.getloadavg()[0])
    return {label: {"command": shown_command(todo[label][0], script), **summarize(s)}
            for label, s in samples.items()}, loads


def shown_command(argv: list[str], script: Path) -> str:
    """``planlab ARGS`` or ``python ARGS``, as the results file shows a timed process."""
    words = ["planlab", *argv[2:]] if argv[1:2] == [str(script)] else ["python", *argv[1:]]
    return " ".join(words)


def host() -> dict[str, Any]:
    return {"load_average": list(os.getloadavg()), "cpu_probe_s": cpu_probe_s()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="interleaved rounds (at least 10; default 15)")
    parser.add_argument("--baseline", type=Path, help="another planlab checkout to time the same commands against")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rounds' order")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("--runs must be at least 10")
    if not Path(GNU_TIME).is_file():
        parser.error(f"needs GNU time at {GNU_TIME} (apt-get install time)")
    if args.baseline is not None and not (args.baseline / "experiments" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline} is not a planlab checkout (no experiments/cli.py)")
    revision = git_revision(ROOT)      # the commit measured: taken before the runs, not when the file is written
    before = host()
    results, loads = measure(args.runs, planlab_script(), args.baseline, args.seed)
    after = host()
    targets = {f"{name}_s": {"value": results[name]["median_s"], "target": t, "pass": results[name]["median_s"] <= t}
               for name, t in TARGETS.items()}
    record: dict[str, Any] = {
        "benchmark": "cli", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": revision["revision"], "git_dirty": revision["dirty"], "runs": args.runs,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "host": {"before": before, "after": after, "load_1m_during": {"min": min(loads), "max": max(loads),
                                                                     "median": statistics.median(loads)}},
        "targets": targets, "all_pass": all(t["pass"] for t in targets.values()), "commands": results,
    }
    if args.baseline is not None:
        base = git_revision(args.baseline)
        record["baseline"] = {"path": str(args.baseline), "git": base["revision"], "speedup": {
            name: results[f"baseline_{name}"]["median_s"] / results[name]["median_s"] for name in COMMANDS}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    shown = {label: {k: round(v, 3) for k, v in r.items() if k in ("median_s", "cpu_median_s", "peak_rss_mib")}
             for label, r in results.items()}
    print(json.dumps({"targets": targets, "commands": shown, "host": record["host"],
                      **({"baseline": record["baseline"]} if "baseline" in record else {})}, indent=1))
    return 0 if record["all_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
