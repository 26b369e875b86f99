"""``planlab model`` in-process: outputs, JSON shapes, and one-line errors with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cli import main
from planning.costs.cost_model import CostModel
from planning.costs.history import load_history
from planning.profiles import load_catalog


@pytest.fixture(scope="module")
def history_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "h.parquet"
    assert main(["model", "synth", str(path), "--rows", "4000", "--seed", "3", "--kinds", "3"]) == 0
    return str(path)


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_synth_writes_a_valid_history(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    assert main(["model", "synth", str(out), "--rows", "1234", "--seed", "1", "--kinds", "2", "--json"]) == 0
    info = _json(capsys)
    assert info["rows"] == 1234 and info["kinds"] == ["kind00", "kind01"] and len(info["truth"]["kinds"]) == 2
    h = load_history(out)
    assert len(h) == 1234 and set(h["kind"]) == {"kind00", "kind01"}


def test_validate_json(history_path, capsys):
    assert main(["model", "validate", history_path, "--json"]) == 0
    rows = _json(capsys)
    assert {r["kind"] for r in rows} == {"kind00", "kind01", "kind02"}
    assert {r["statistic"] for r in rows} == {"mean", "p95"}
    for r in rows:
        assert {"kind", "statistic", "mape", "samples"} <= set(r)
        assert 0 <= r["mape"] < 0.5 and r["samples"] > 0


def test_validate_text(history_path, capsys):
    assert main(["model", "validate", history_path, "--statistics", "mean,p90", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "kind01" in out and "p90" in out and "mape" in out


def test_predict_json_matches_the_library(history_path, capsys):
    assert main(["model", "predict", history_path, "--kind", "kind01", "--profile", "lambda-1769",
                 "--input-bytes", "10MB", "--sla", "p95", "--json"]) == 0
    got = _json(capsys)
    assert {"exec_s", "output_bytes", "samples", "source", "p50", "p95"} <= set(got)
    est = CostModel().fit(load_history(history_path)).estimate("kind01", load_catalog("lambda")["lambda-1769"], 1e7, "p95")
    assert got["exec_s"] == pytest.approx(est.exec_s)
    assert got["p95"] == pytest.approx(est.exec_s) and got["p50"] < got["p95"]
    assert got["source"] == "history" and got["samples"] == est.samples


def test_predict_text_and_prior_for_unknown_kind(history_path, capsys):
    assert main(["model", "predict", history_path, "--kind", "unknown", "--profile", "small", "--catalog", "local",
                 "--sla", "median", "--runtime-hint", "3", "--hint-cores", "1"]) == 0
    out = capsys.readouterr().out
    assert "prior" in out and "small" in out
    assert main(["model", "predict", history_path, "--kind", "unknown", "--profile", "small", "--catalog", "local",
                 "--sla", "mean", "--runtime-hint", "3", "--json"]) == 0
    got = _json(capsys)
    assert got["source"] == "prior" and got["samples"] == 0
    assert got["exec_s"] == pytest.approx(3.0 / 0.5)      # the 0.5-CPU quota of "small" doubles a 1-CPU hint


def test_describe(history_path, capsys):
    assert main(["model", "describe", history_path, "--json"]) == 0
    record = _json(capsys)
    assert [k["kind"] for k in record["kinds"]] == ["kind00", "kind01", "kind02"]
    assert main(["model", "describe", history_path]) == 0
    assert "kind02" in capsys.readouterr().out


def test_bad_history_is_one_line_exit_2(tmp_path, history_path, capsys):
    h = load_history(history_path)
    h.loc[5, "exec_s"] = np.nan
    bad = tmp_path / "bad.parquet"
    h.to_parquet(bad)
    assert main(["model", "validate", str(bad)]) == 2
    assert "exec_s" in _error_line(capsys)
    assert main(["model", "validate", str(tmp_path / "missing.parquet")]) == 2
    assert "does not exist" in _error_line(capsys)


@pytest.mark.parametrize("argv, needle", [
    (["--profile", "nope"], "unknown profile"),
    (["--profile", "nope", "--catalog", "local"], "unknown profile"),
    (["--profile", "small", "--catalog", "no-such-catalog"], "unknown catalog"),
    (["--profile", "small", "--sla", "p200"], "SLA"),
    (["--profile", "small", "--input-bytes", "-5"], "size"),
    (["--profile", "small", "--input-bytes", "ten"], "size"),
])
def test_predict_errors_are_one_line_exit_2(history_path, capsys, argv, needle):
    assert main(["model", "predict", history_path, "--kind", "kind00", *argv]) == 2
    assert needle in _error_line(capsys)


def test_model_without_action_prints_help(capsys):
    assert main(["model"]) == 2
    assert "validate" in capsys.readouterr().err
