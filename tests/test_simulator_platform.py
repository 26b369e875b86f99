"""Platform: defaults, zero, the cost model's values, dict/TOML round trips and clear config errors."""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from simulator import Platform


def test_round_trips(tmp_path) -> None:
    p = Platform(invoke_s=0.01, dispatch_s=2.5, storage_sharing=1.7)
    assert Platform.from_dict(p.to_dict()) == p
    path = tmp_path / "p.toml"
    p.to_toml(path, comment="fitted\non two lines")
    assert Platform.from_toml(path) == p
    zero = Platform.zero()
    zero.to_toml(path)
    assert Platform.from_toml(path) == zero and math.isinf(zero.storage_bandwidth_Bps)
    (tmp_path / "t.toml").write_text("[platform]\ncold_start_s = 1\n")
    assert Platform.from_toml(tmp_path / "t.toml").cold_start_s == 1.0


def test_from_cost_model_at_an_sla() -> None:
    model = CostModel(latency_s=0.001, bandwidth_Bps=1e8, cold_start_s=0.5, warm_start_s=0.01)
    mean = Platform.from_cost_model(model, "mean")
    assert mean.storage_latency_s == pytest.approx(0.001) and mean.storage_bandwidth_Bps == pytest.approx(1e8)
    assert mean.cold_start_s == pytest.approx(0.5) and mean.warm_start_s == pytest.approx(0.01)
    p95 = Platform.from_cost_model(model, "p95", invoke_s=0.0)
    factor = model.transfer_s(1e6, "download", "p95") / model.transfer_s(1e6, "download", "mean")
    assert p95.storage_latency_s == pytest.approx(0.001 * factor) and p95.invoke_s == 0.0
    assert p95.cold_start_s > mean.cold_start_s


@pytest.mark.parametrize("data, message", [
    ({"warp_s": 1.0}, "unknown key 'warp_s'"),
    ({"invoke_s": -1.0}, "invoke_s must be >= 0"),
    ({"invoke_s": "fast"}, "invoke_s must be a number"),
    ({"storage_bandwidth_Bps": 0}, "storage_bandwidth_Bps must be > 0"),
    ({"dispatch_s": float("inf")}, "dispatch_s must be finite"),
    ({"level_delay_s": float("nan")}, "level_delay_s must be >= 0"),
    ({"storage_sharing": 2.5}, "storage_sharing must be between 1 and 2"),
    ({"storage_sharing": 0.5}, "storage_sharing must be between 1 and 2"),
])
def test_bad_values_name_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        Platform.from_dict(data)


def test_missing_or_broken_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Platform.from_toml(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("x = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Platform.from_toml(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        Platform().with_(nope=1.0)
