"""``planlab model``: fit the cost model on a history and ask it what it believes.

Actions:

``validate HISTORY``   held-out (k-fold) error per kind and statistic, next to the
                       sampling-noise floor of the data;
``predict HISTORY``    one estimate: ``--kind K --profile P [--catalog C] --input-bytes B --sla S``;
``describe HISTORY``   what was fitted per kind (exponent, intercept, slope, noise, samples);
``synth OUT.parquet``  write a synthetic history drawn from known laws (for demos and tests).

Every action takes ``--json`` for machine-readable output.  A history that fails
its schema, an unknown profile or a bad SLA is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import asdict

from experiments.cli import print_json
from planning.errors import CatalogError, PlanlabError
from planning.profiles import BUILTIN_CATALOGS, ResourceProfile, load_catalog

_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2 ** 10, "mib": 2 ** 20,
          "gib": 2 ** 30, "tib": 2 ** 40}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model", help="fit the cost model on a history: validate, predict, describe, synth",
        description="Fit the cost model on a history of past runs and ask it what it believes.")
    actions = parser.add_subparsers(dest="model_action", metavar="ACTION")

    v = actions.add_parser("validate", help="k-fold held-out error per kind and statistic",
                           description="k-fold held-out MAPE of mean and percentile estimates per kind.")
    v.add_argument("history", help="a Parquet (or CSV) history")
    v.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    v.add_argument("--statistics", default="mean,p95", help="comma-separated SLA statistics (default mean,p95)")
    v.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default 0)")
    v.add_argument("--json", action="store_true", help="print a JSON list of {kind, statistic, mape, samples, ...}")

    p = actions.add_parser("predict", help="what the model believes for one kind on one profile",
                           description="Estimate one kind on one profile at an SLA statistic.")
    p.add_argument("history", help="a Parquet (or CSV) history to fit on")
    p.add_argument("--kind", required=True, help="task kind")
    p.add_argument("--profile", required=True, help="profile name (from --catalog, the history, or a built-in catalog)")
    p.add_argument("--catalog", help=f"built-in catalog ({', '.join(BUILTIN_CATALOGS)}) or a TOML file")
    p.add_argument("--input-bytes", default="0", help="input size, e.g. 1e6, 10MB, 2MiB (default 0)")
    p.add_argument("--sla", default="mean", help="mean, median or a percentile such as p95 (default mean)")
    p.add_argument("--runtime-hint", type=float, help="seconds on --hint-cores CPUs, used if the kind has no history")
    p.add_argument("--hint-cores", type=float, help="CPUs the runtime hint was measured on (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON")

    d = actions.add_parser("describe", help="what was fitted per kind", description="Fitted laws per kind.")
    d.add_argument("history", help="a Parquet (or CSV) history")
    d.add_argument("--json", action="store_true", help="print JSON (the model's full provenance record)")

    s = actions.add_parser("synth", help="write a synthetic history drawn from known laws",
                           description="Write a synthetic history (kinds x profiles x sizes x samples) as Parquet.")
    s.add_argument("out", help="output Parquet path")
    s.add_argument("--rows", type=int, default=10_000, help="number of rows (default 10000)")
    s.add_argument("--seed", type=int, default=0, help="seed of the laws and the noise (default 0)")
    s.add_argument("--kinds", type=int, default=5, help="number of task kinds (default 5)")
    s.add_argument("--catalog", default="lambda", help="profiles to measure on (default lambda)")
    s.add_argument("--json", action="store_true", help="print JSON, including the true laws")

    parser.set_defaults(handler=run, model_parser=parser)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "model_action", None)
    if action is None:
        args.model_parser.print_help(sys.stderr)
        return 2
    return {"validate": _validate, "predict": _predict, "describe": _describe, "synth": _synth}[action](args)


# ---------------------------------------------------------------- actions
def _validate(args: argparse.Namespace) -> int:
    from planning.costs.cost_model import CostModel
    from planning.costs.history import load_history
    from planning.sla import SLA

    statistics = [SLA.parse(t).name for t in args.statistics.split(",") if t.strip()]
    if args.folds < 2:
        raise PlanlabError(f"--folds must be at least 2, got {args.folds}", "use --folds 5")
    history = load_history(args.history)
    table = CostModel().validate(history, folds=args.folds, statistics=statistics, seed=args.seed)
    if args.json:
        print_json(table.to_dict(orient="records"))
        return 0
    if table.empty:
        print("no group has enough rows to score (need 5 rows per kind, profile and input size)")
        return 0
    print(f"held-out error ({args.folds}-fold) of {len(history)} rows; floor = error of a perfect model on these samples")
    print(f"{'kind':<24} {'statistic':>9} {'mape':>8} {'floor':>8} {'samples':>9} {'groups':>7}")
    for r in table.itertuples(index=False):
        print(f"{r.kind:<24} {r.statistic:>9} {r.mape:>8.2%} {r.floor:>8.2%} {r.samples:>9d} {r.groups:>7d}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from planning.costs.cost_model import CostModel
    from planning.costs.history import load_history
    from planning.sla import SLA

    sla = SLA.parse(args.sla)
    nbytes = parse_bytes(args.input_bytes)
    history = load_history(args.history)
    profile = _resolve_profile(args.profile, args.catalog, history)
    model = CostModel().fit(history)
    est = model.estimate(args.kind, profile, nbytes, sla, runtime_hint_s=args.runtime_hint, hint_cores=args.hint_cores)
    record = est.to_dict()
    record["cpus"] = profile.cpus
    if args.json:
        print_json(record)
        return 0
    print(f"{args.kind} on {profile.name} ({profile.cpus:g} CPUs), input {nbytes:.4g} B, SLA {sla.name}:")
    print(f"  exec_s        {est.exec_s:.6g}  (mean {record['mean']:.4g}, p50 {record['p50']:.4g}, "
          f"p95 {record['p95']:.4g}, p99 {record['p99']:.4g})")
    print(f"  output_bytes  {est.output_bytes:.6g}")
    print(f"  source        {est.source} ({est.samples} samples)")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from planning.costs.cost_model import CostModel
    from planning.costs.history import load_history

    model = CostModel().fit(load_history(args.history))
    if args.json:
        print_json(model.to_dict())
        return 0
    table = model.describe()
    if table.empty:
        print("the history has no rows: every estimate is a prior")
        return 0
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from planning.costs.history import save_history
    from planning.sources.synthetic import DEFAULT_INPUT_SIZES, synthetic_history

    if args.rows < 1 or args.kinds < 1:
        raise PlanlabError(f"--rows and --kinds must be >= 1 (got {args.rows}, {args.kinds})", "pass positive counts")
    profiles = load_catalog(args.catalog).profiles
    cells = args.kinds * len(profiles) * len(DEFAULT_INPUT_SIZES)
    history, truth = synthetic_history(kinds=args.kinds, profiles=profiles, samples_per_cell=math.ceil(args.rows / cells),
                                       seed=args.seed)
    history = history.iloc[:args.rows]
    try:
        path = save_history(history, args.out)
    except OSError as exc:
        raise PlanlabError(f"cannot write {args.out!r}: {exc.strerror or exc}", "give a writable file path") from None
    if args.json:
        print_json({"path": str(path), "rows": len(history), "kinds": truth.kind_names,
                    "profiles": [p.name for p in profiles], "seed": args.seed,
                    "truth": {"kinds": [asdict(k) for k in truth.kinds], "download": asdict(truth.download),
                              "upload": asdict(truth.upload), "startup": asdict(truth.startup)}})
        return 0
    print(f"wrote {len(history)} rows ({args.kinds} kinds x {len(profiles)} profiles x "
          f"{len(DEFAULT_INPUT_SIZES)} input sizes) to {path}")
    return 0


# ---------------------------------------------------------------- helpers
def parse_bytes(text: str) -> float:
    """``1e6``, ``10MB``, ``2 MiB`` -> bytes (a bad or negative size is a :class:`PlanlabError`)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise PlanlabError(f"cannot read the size {text!r}", "give bytes >= 0 such as 1e6, 10MB or 2MiB")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def _resolve_profile(name: str, catalog: str | None, history) -> ResourceProfile:
    """The profile from ``--catalog``, else as recorded in the history, else from a built-in catalog."""
    if catalog:
        return load_catalog(catalog)[name]
    rows = history[history["profile"] == name]
    if len(rows):
        return ResourceProfile(name, float(rows["cpus"].iloc[0]), float(rows["memory_mb"].iloc[0]), 0.0)
    for builtin in BUILTIN_CATALOGS:
        cat = load_catalog(builtin)
        if name in cat:
            return cat[name]
    known = list(dict.fromkeys(sorted(set(history["profile"])) +
                               [n for b in BUILTIN_CATALOGS for n in load_catalog(b).names]))
    shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
    raise CatalogError(f"unknown profile {name!r} (not in the history nor a built-in catalog)",
                       f"pass --catalog, or use one of: {shown}")
