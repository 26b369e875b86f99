"""The alternating chain's hop floor (benchmarks/_hop_floor.py) passes its token through the server as a hop does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _hop_floor  # noqa: E402
from executor.server.embedded import EmbeddedRedis  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with EmbeddedRedis() as srv:
        yield srv


def _calls(client, command: str) -> int:
    return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


@pytest.mark.parametrize("mode, pushed_by", [("commit", "evalsha"), ("plain", "rpush")])
def test_each_hop_is_one_push_and_one_pop_through_the_server(server, mode: str, pushed_by: str) -> None:
    client = server.client()
    client.config_resetstat()
    before = client.dbsize()
    us = _hop_floor.hop_floor_us(server.url, hops=40, mode=mode)
    assert 0 < us < 1e6
    # both sides pass the token 40 times, plus the first push; each side's pops took 40 tokens (the last push may
    # also answer the pop the other side sent with its last push, before that side hung up)
    assert _calls(client, pushed_by) == 2 * 40 + 1
    assert 2 * 40 <= _calls(client, "blpop") <= 2 * 40 + 1
    assert client.dbsize() == before   # the floor's keys are gone


def test_spin_and_bad_arguments(server) -> None:
    assert _hop_floor.hop_floor_us(server.url, hops=5, spin_s=0.0005) > 0
    with pytest.raises(ValueError, match="mode"):
        _hop_floor.hop_floor_us(server.url, hops=5, mode="lua")
    with pytest.raises(ValueError, match="hops"):
        _hop_floor.hop_floor_us(server.url, hops=0)
