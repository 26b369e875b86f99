"""The rule of when a worker begins each pre-load (planning.protocol.preload_order), which every engine follows."""

from __future__ import annotations

from planning.protocol.preload_order import preload_anchors


def test_a_preloaded_task_is_anchored_at_the_preloaded_task_before_it_else_the_first() -> None:
    assert preload_anchors(["a", "b", "c", "d", "e"], lambda t: t in {"c", "e"}) == {"c": "a", "e": "c"}
    assert preload_anchors(["a", "b", "c"], lambda t: t in {"b", "c"}) == {"b": "a", "c": "b"}


def test_the_first_task_is_never_preloaded_and_nothing_without_a_preloaded_task() -> None:
    assert preload_anchors(["a", "b"], lambda t: True) == {"b": "a"}
    assert preload_anchors(["a", "b", "c"], lambda t: False) == {}
    assert preload_anchors([], lambda t: True) == {}
    assert preload_anchors([7], lambda t: True) == {}


def test_each_anchor_begins_one_preload() -> None:
    seq = list(range(12))
    anchors = preload_anchors(seq, lambda t: t % 3 == 2)
    assert anchors == {2: 0, 5: 2, 8: 5, 11: 8}
    assert len(set(anchors.values())) == len(anchors)
