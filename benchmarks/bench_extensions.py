"""The extension points' costs, recorded in ``benchmarks/results/extensions.json``.

Run: ``python benchmarks/bench_extensions.py [--quick] [--out FILE]`` (needs the dev extra).

* WfCommons in: importing ``wfcommons`` (a fresh interpreter, median of 3) and building
  ``gen:wfcommons:montage`` of 500, 2,000 and 10,000 tasks (target: 2,000 tasks in <= 10 s);
* WfFormat out: turning a HEFT plan of a 1,000- and a 10,000-task random DAG into a WfFormat
  instance and validating it against the official schema (target: 10,000 tasks in <= 10 s);
* plugins by name: resolving a built-in name, ``module:Class``, ``file.py:Class`` (cached
  import) and an unknown name (which scans the installed entry points), per call.

Every figure is a median; the host's load average is recorded before and after, since
these machines are shared (see FACTS.md: quote ratios, and re-run when the load is high).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from _timing import timed
import _revision      # the commit measured: taken when the run starts
from planning import SLA, CostModel, load_catalog, load_workflow
from planning.errors import PlanError
from planning.planners import get_planner, resolve_planner
from planning.sources.wfcommons_recipes import wfcommons_workflow
from planning.sources.wfformat_export import plan_to_wfformat, validate_wfformat

TARGETS = {"wfcommons_montage_2000_s": 10.0, "export_validate_10k_s": 10.0}
RESULTS = Path(__file__).resolve().parent / "results" / "extensions.json"


def bench_wfcommons(quick: bool) -> dict:
    code = "import time; t = time.perf_counter(); import wfcommons.wfchef.recipes; print(time.perf_counter() - t)"
    imports = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout) for _ in range(1 if quick else 3)]
    wfcommons_workflow("montage", tasks=100)           # import once in this process
    out = {"import_s": sorted(imports)[len(imports) // 2], "build_s": {}}
    for tasks in ([500, 2000] if quick else [500, 2000, 10000]):
        seconds, _, workflow = timed(lambda: wfcommons_workflow("montage", tasks=tasks), 1 if quick else 3)
        out["build_s"][str(tasks)] = {"seconds": seconds, "tasks": len(workflow)}
    return out


def bench_export(quick: bool) -> dict:
    out = {}
    for tasks in (1000, 10000):
        workflow = load_workflow(f"gen:random_layered:tasks={tasks},seed=1")
        plan = get_planner("heft").plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean"))
        build_s, _, doc = timed(lambda: plan_to_wfformat(workflow, plan), 1 if quick else 3)
        validate_s, _, _ = timed(lambda: validate_wfformat(doc), 1 if quick else 3)
        out[str(tasks)] = {"build_s": build_s, "validate_s": validate_s, "total_s": build_s + validate_s,
                           "bytes": len(json.dumps(doc))}
    return out


def bench_resolver() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mine.py"
        path.write_text("from planning.planners.heft import Heft\n\nclass Mine(Heft):\n    pass\n")

        def unknown() -> None:
            try:
                resolve_planner("no-such-planner")
            except PlanError:
                pass

        return {f"{label}_ms": 1000 * timed(fn, 200)[0] for label, fn in [
            ("registered", lambda: resolve_planner("heft")),
            ("module_class", lambda: resolve_planner("planning.planners.heft:Heft")),
            ("file_class", lambda: resolve_planner(f"{path}:Mine")),
            ("unknown_scans_entry_points", unknown)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats; still recorded")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_start = list(os.getloadavg())
    wfcommons, export, resolver = bench_wfcommons(args.quick), bench_export(args.quick), bench_resolver()
    values = {"wfcommons_montage_2000_s": wfcommons["build_s"]["2000"]["seconds"],
              "export_validate_10k_s": export["10000"]["total_s"]}
    targets = {k: {"value": values[k], "target": t, "pass": values[k] <= t} for k, t in TARGETS.items()}
    result = {"benchmark": "extensions", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "git": _revision.short(), "quick": args.quick,
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count(), "load_average_start": load_start,
                          "load_average_end": list(os.getloadavg())},
              "targets": targets, "all_pass": all(t["pass"] for t in targets.values()),
              "wfcommons": wfcommons, "wfformat_export": export, "resolver": resolver}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"targets": targets, "wfcommons": wfcommons, "wfformat_export": export,
                      "resolver": resolver, "load": [load_start, result["machine"]["load_average_end"]]}, indent=1))
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
