"""``planlab calibrate``: fits, writes a platform TOML that ``planlab simulate --platform`` reads."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.cli import main
from simulator import Platform

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def test_calibrate_then_predict_another_execution(tmp_path, capsys) -> None:
    out = tmp_path / "platform.toml"
    train = [str(p) for p in sorted(DATA.glob("srasearch-*.json"))[:3]]
    assert main(["calibrate", *train, "--planner", "recorded", "--out", str(out), "--max-evaluations", "80",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"error_before", "error_after", "held_out_error"} <= set(info)
    assert info["error_after"] < info["error_before"]
    platform = Platform.from_toml(out)
    assert platform.to_dict() == info["platform"]
    other = str(sorted(DATA.glob("srasearch-*.json"))[3])
    assert main(["simulate", other, "--planner", "recorded", "--platform", str(out), "--replications", "0",
                 "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["makespan_s"] > predicted["planned_makespan_s"]   # the fitted overheads are applied


def test_text_output_and_errors(tmp_path, capsys) -> None:
    files = [str(p) for p in sorted(DATA.glob("helloworld-*.json"))]
    assert main(["calibrate", *files, "--no-held-out", "--max-evaluations", "40"]) == 0
    assert "error after" in capsys.readouterr().out
    assert main(["calibrate", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["calibrate", *files, "--fit", "warp_s"]) == 2
    assert "cannot fit" in capsys.readouterr().err
    assert main(["calibrate", *files, "--no-held-out", "--staging-split", "auto", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"]
    assert main(["calibrate", *files, "--staging-split", "sometimes"]) == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_reports_kept_terms_baselines_and_families(tmp_path, capsys) -> None:
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = [str(corpus / f"montage-chameleon-{s}-001.json.gz") for s in ("2mass-01d", "2mass-015d", "dss-05d")]
    out = tmp_path / "montage.toml"
    assert main(["calibrate", *files, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kept terms" in text and "held-out error" in text
    assert "baseline four-term formula" in text and "baseline replay, no overheads" in text
    written = out.read_text()
    assert "# kept terms:" in written
    Platform.from_toml(out)                                   # the comments do not stop it being read back
    assert main(["calibrate", *files, "--prior", "none", "--no-families", "--no-held-out", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["prior"] is None and info["families"] == {} and info["kept"]
    assert main(["calibrate", *files, "--prior", "nonsense"]) == 2
    assert "unknown calibration prior" in capsys.readouterr().err


def test_machine_starter_is_offered_on_request(capsys) -> None:
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = [str(corpus / f"blast-chameleon-{s}-002.json.gz") for s in ("small", "medium")]
    assert main(["calibrate", *files, "--prior", "none", "--no-held-out", "--json"]) == 0
    assert "machine_dispatch_s" not in json.loads(capsys.readouterr().out)["fitted"]
    assert main(["calibrate", *files, "--prior", "none", "--no-held-out", "--json", "--machine-starter"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "machine_dispatch_s" in info["fitted"] and info["platform"]["machine_dispatch_s"] >= 0


def test_reports_the_slots_per_core_the_replays_used(tmp_path, capsys) -> None:
    # WfInstances' blast (Makeflow) records 24 cores on nodes whose 48 hardware threads each ran a task
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = [str(corpus / f"blast-chameleon-{s}.json.gz") for s in ("small-002", "medium-002", "large-002",
                                                                      "small-004", "large-005")]
    out = tmp_path / "blast.toml"
    assert main(["calibrate", *files, "--no-held-out", "--out", str(out)]) == 0
    assert "slots per core 2 " in capsys.readouterr().out
    assert "# replayed with 2 task slots per recorded core" in out.read_text()


def test_reports_the_model_the_inner_cross_validation_chose(tmp_path, capsys) -> None:
    # srasearch's overheads add to its tasks: on these three sizes the four-term formula cross-validates better
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = [str(p) for s in ("10a", "40a", "50a") for p in sorted(corpus.glob(f"srasearch-chameleon-{s}-*.json.gz"))]
    out = tmp_path / "srasearch.toml"
    assert main(["calibrate", *files, "--no-held-out", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model          four-term formula" in text and "s x tasks" in text
    assert "# model: four-term formula, chosen by inner cross-validation" in out.read_text()
    Platform.from_toml(out)
    assert main(["calibrate", *files, "--no-held-out", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "four_term" and info["formula"]["tasks"] > 0
    assert info["model_scores"]["four_term"] < info["model_scores"]["simulator"]


def test_background_runs_are_counted_and_offered_on_request(capsys) -> None:
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    # small-003 was submitted 31 s after small-002, which was still running: one background run
    files = [str(corpus / f"blast-chameleon-small-00{r}.json.gz") for r in (2, 3)]
    # the default ("auto") counts them for the formula only; "off" not at all: the simulator is offered nothing
    for mode in ((), ("--background-runs", "off"), ("--background-runs", "auto")):
        assert main(["calibrate", *files, "--prior", "none", "--no-held-out", "--json", *mode]) == 0
        assert "background_dispatch_s" not in json.loads(capsys.readouterr().out)["fitted"]
    assert main(["calibrate", *files, "--prior", "none", "--no-held-out", "--json", "--background-runs"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "background_dispatch_s" in info["fitted"] and info["platform"]["background_runs"] == 0
