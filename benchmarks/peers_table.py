"""The README's table of planlab against its peers, generated from ``benchmarks/results/*.json``.

Run: ``python benchmarks/peers_table.py`` rewrites the block between the README's
``<!-- peers:begin -->`` and ``<!-- peers:end -->`` markers; ``--check`` only says
whether the README is current (exit 1 when not: a results file was re-recorded and
the table was not regenerated).  Every figure comes from a results file, beside its
commit and the 1-minute load when it was taken, so the table never says more than
the benchmarks measured.  A peer a results file does not hold is left out, not
guessed: e.g. dask.distributed only where ``bench_executor.py`` ran with the
``[bench]`` extra installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"


@dataclass(frozen=True)
class PeerRow:
    """One comparison: what was measured, planlab's figure, the peer's, and how many times better planlab is."""

    what: str
    peer: str
    ours: str
    theirs: str
    advantage: float        # > 1: planlab is that many times faster (or cheaper)
    source: str             # results file
    commit: str
    load: float | None      # 1-minute load when it was taken


def _load(results: Path, name: str) -> dict[str, Any] | None:
    try:
        return json.loads((results / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _provenance(data: dict[str, Any]) -> tuple[str, float | None]:
    commit = str(data.get("git") or "?")[:7]
    machine = data.get("machine") or {}
    load = machine.get("load_average_start") or machine.get("load_average")
    return commit, (float(load[0]) if load else None)


def _executor_rows(data: dict[str, Any]) -> Iterator[tuple[str, str, str, str, float]]:
    peers = (("dask_ms_per_task", "dask.distributed"), ("dask_threaded_ms_per_task", "dask threaded scheduler"),
             ("ray_ms_per_task", "Ray tasks"))
    for row in data.get("overhead", []):
        ours_ms = row["makespan_s"] / row["tasks"] * 1e3
        for key, peer in peers:
            if row.get(key):
                yield (f"{row['dag']} of {row['tasks']} tasks, {row['placement']}: time per task", peer,
                       f"{ours_ms:.3f} ms", f"{row[key]:.3f} ms", row[key] / ours_ms)
    for row in data.get("handoff", {}).get("rows", []):
        if row.get("flavour") == "raw" and row.get("bytes") in (1 << 20, 10 << 20):
            size = f"{row['bytes'] >> 20} MiB"
            yield (f"{size} output from task a to task b on another worker (a's end to b's start)",
                   "redis-py SET + GET", f"{row['handoff_s'] * 1e3:.2f} ms", f"{row['raw_set_get_s'] * 1e3:.2f} ms",
                   row["raw_set_get_s"] / row["handoff_s"])


def _planning_rows(data: dict[str, Any]) -> Iterator[tuple[str, str, str, str, float]]:
    saga = data.get("heft_vs_saga")
    if saga and saga.get("saga_s"):
        yield (f"HEFT on {saga['tasks']} tasks x {saga['profiles']} profiles", "anrg-saga HEFT",
               f"{saga['ours_s'] * 1e3:.1f} ms", f"{saga['saga_s'] * 1e3:.0f} ms", saga["saga_s"] / saga["ours_s"])


def _simulator_rows(data: dict[str, Any]) -> Iterator[tuple[str, str, str, str, float]]:
    for row in data.get("speed", []):
        if row.get("simpy_tasks_per_s") and row.get("platform") == "default":
            yield (f"simulate {row['tasks']} tasks (default platform)", "a plain SimPy model",
                   f"{row['tasks_per_s']:,.0f} tasks/s", f"{row['simpy_tasks_per_s']:,.0f} tasks/s",
                   row["tasks_per_s"] / row["simpy_tasks_per_s"])


#: results file -> the rows it gives
SOURCES: dict[str, Callable[[dict[str, Any]], Iterator[tuple[str, str, str, str, float]]]] = {
    "executor": _executor_rows, "planning": _planning_rows, "simulator": _simulator_rows,
}


def peer_rows(results: Path = RESULTS) -> list[PeerRow]:
    """Every comparison the results files hold, in a fixed order."""
    rows = []
    for name, extract in SOURCES.items():
        data = _load(results, name)
        if data is None:
            continue
        commit, load = _provenance(data)
        for what, peer, ours, theirs, advantage in extract(data):
            rows.append(PeerRow(what, peer, ours, theirs, float(advantage), f"{name}.json", commit, load))
    return rows


def markdown(rows: list[PeerRow]) -> str:
    """The table (and one line saying where it comes from)."""
    lines = ["| measured | planlab | peer | peer's | planlab is | from (commit, load) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        load = "?" if r.load is None else f"{r.load:.1f}"
        lines.append(f"| {r.what} | {r.ours} | {r.peer} | {r.theirs} | {_times(r.advantage)} | "
                     f"`{r.source}` ({r.commit}, load {load}) |")
    if rows:
        best = statistics.median(r.advantage for r in rows)
        lines.append("")
        lines.append(f"Median advantage {_times(best)} over {len(rows)} comparisons. Generated by "
                     "`python benchmarks/peers_table.py` from `benchmarks/results/`, each figure as its benchmark recorded it.")
    return "\n".join(lines)


def _times(x: float) -> str:
    return f"{x:.1f}x faster" if x >= 1 else f"{1 / x:.1f}x slower"


def rendered(readme_text: str, table: str) -> str:
    """``readme_text`` with the block between the markers replaced by ``table``."""
    start, end = readme_text.find(BEGIN), readme_text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"peers_table: {README.name} has no '{BEGIN}' ... '{END}' block (fix: add the two markers)")
    return readme_text[:start + len(BEGIN)] + "\n" + table + "\n" + readme_text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the README's table is not current")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = rendered(text, markdown(peer_rows(args.results)))
    if args.check:
        if new != text:
            print("peers_table: the README's peers table is stale (fix: python benchmarks/peers_table.py)",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.readme.write_text(new)
    print(markdown(peer_rows(args.results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
