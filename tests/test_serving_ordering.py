"""serving/ordering.py: the candidate order the client and the benchmarks share, by hand."""
import numpy as np
import pytest

from serving.ordering import order, ranks, sort_keys

RETRIEVAL = [0.9, 0.8, 0.7, 0.6]  # retrieval ranks a 1, b 2, c 3, d 4
RANKING = [0.1, 0.4, 0.3, 0.2]  # ranking ranks b 1, c 2, d 3, a 4


def test_ranking_and_retrieval_orders():
    assert order(RETRIEVAL, RANKING, "ranking").tolist() == [1, 2, 3, 0]
    assert order(RETRIEVAL, RANKING, "retrieval").tolist() == [0, 1, 2, 3]
    assert order(RETRIEVAL, RANKING).tolist() == [1, 2, 3, 0]  # ranking is the default


def test_fused_is_reciprocal_rank_fusion_with_k_60():
    # a: 1/61 + 1/64 = .032018; b: 1/62 + 1/61 = .032522; c: 1/63 + 1/62 = .032002; d: 1/64 + 1/63 = .031498
    keys = sort_keys(RETRIEVAL, RANKING, "fused")
    assert keys == pytest.approx([1 / 61 + 1 / 64, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62, 1 / 64 + 1 / 63])
    assert order(RETRIEVAL, RANKING, "fused").tolist() == [1, 0, 2, 3]


def test_ties_keep_the_retrieval_order_whatever_the_input_order():
    assert ranks([0.1, 0.9, 0.5]).tolist() == [3, 1, 2]
    assert order([0.1, 0.9, 0.5], [0.5, 0.5, 0.5], "ranking").tolist() == [1, 2, 0]
    assert order([0.1, 0.9, 0.5], [0.0, 0.0, 0.0], "retrieval").tolist() == [1, 2, 0]
    # Mirror-image ranks tie every pair in fusion: x (1/63 + 1/61) ties y (1/61 + 1/63); y retrieved first.
    assert order([0.1, 0.9, 0.5], [0.9, 0.1, 0.5], "fused").tolist() == [1, 0, 2]


def test_mistakes_are_clear():
    with pytest.raises(ValueError, match="Unknown order 'best'"):
        order(RETRIEVAL, RANKING, "best")
    with pytest.raises(ValueError, match="one of each per candidate"):
        order(RETRIEVAL[:3], RANKING, "ranking")
    assert order(np.array([]), np.array([]), "fused").tolist() == []
