"""models.metrics on arrays small enough to work out by hand."""
from math import log2, sqrt

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks import baselines
from models import metrics

SCORES = np.array([[0.1, 0.9, 0.5, 0.7],
                   [0.4, 0.3, 0.2, 0.1]])
MASK = np.array([[False, True, False, False],
                 [False, False, False, False]])


@pytest.mark.parametrize("mask", [MASK, MASK.tolist(), sp.csr_matrix(MASK)], ids=["dense", "list", "csr"])
def test_top_k_masked_skips_masked_items_best_first(mask):
    assert baselines.top_k_masked(SCORES, mask, k=2).tolist() == [[3, 2], [0, 1]]
    assert baselines.top_k_masked(SCORES, mask, k=4).tolist() == [[3, 2, 0, -1], [0, 1, 2, 3]]


def test_top_k_masked_pads_users_who_run_out_of_items():
    mask = sp.csr_matrix(np.array([[True, True, False, True], [False] * 4]))
    assert baselines.top_k_masked(SCORES, mask, k=2).tolist() == [[2, -1], [0, 1]]
    assert SCORES[0, 1] == 0.9  # the caller's scores are not changed


def test_top_k_masked_rejects_k_wider_than_catalogue():
    with pytest.raises(ValueError, match="between 1 and the 4 items"):
        baselines.top_k_masked(SCORES, MASK, k=5)


def test_ranking_metrics_by_hand():
    top = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [0, 1, 2, 3]])
    # user 0: hits at ranks 2 and 4 of 3 relevant; user 1: hit at rank 1 of 1; user 2: none relevant
    got = metrics.ranking_metrics(top, [{2, 4, 9}, [5], set()], ks=(2, 4))
    d2, d3, d4, d5 = 1, 1 / log2(3), 1 / 2, 1 / log2(5)
    want = {
        "recall@2": (1 / 3 + 1) / 2, "precision@2": (1 / 2 + 1 / 2) / 2,
        "ndcg@2": (d3 / (d2 + d3) + 1) / 2, "map@2": ((1 / 2) / 2 + 1) / 2, "hit_rate@2": 1.0,
        "recall@4": (2 / 3 + 1) / 2, "precision@4": (2 / 4 + 1 / 4) / 2,
        "ndcg@4": ((d3 + d5) / (d2 + d3 + d4) + 1) / 2,
        "map@4": ((1 / 2 + 2 / 4) / 3 + 1) / 2, "hit_rate@4": 1.0,
        "mrr": (1 / 2 + 1) / 2,
    }
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


def test_ranking_metrics_without_hits_and_with_padding():
    got = metrics.ranking_metrics(np.array([[0, -1], [3, 1]]), [{7}, {1}], ks=(1, 2))
    assert got["recall@1"] == 0.0 and got["hit_rate@1"] == 0.0
    assert got["recall@2"] == 0.5 and got["hit_rate@2"] == 0.5 and got["mrr"] == pytest.approx(0.25)


def test_ranking_metrics_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="cut-off 5 is wider than the top lists"):
        metrics.ranking_metrics(np.zeros((1, 4), int), [{0}], ks=(5,))
    with pytest.raises(ValueError, match="no user has a relevant item"):
        metrics.ranking_metrics(np.zeros((1, 4), int), [set()], ks=(2,))


FEATURES = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0]])
POPULARITY = np.array([8, 4, 2, 1, 0])  # of 8 users: -log2(p / 8) = 0, 1, 2, 3, 3 (0 counts as 1)


def test_beyond_accuracy_by_hand():
    top = np.array([[0, 1, 2], [2, 3, 0]])  # top-2 lists: {0, 1} and {2, 3}
    got = metrics.beyond_accuracy(top, 2, POPULARITY, 8, FEATURES)
    assert got["coverage@2"] == 4 / 5
    assert got["diversity@2"] == pytest.approx((0 + (1 - 1 / sqrt(2))) / 2)
    assert got["novelty@2"] == pytest.approx((0 + 1 + 2 + 3) / 4)


def test_beyond_accuracy_ignores_padding():
    got = metrics.beyond_accuracy(np.array([[4, -1]]), 2, POPULARITY, 8, FEATURES)
    assert got == {"coverage@2": 1 / 5, "diversity@2": 0.0, "novelty@2": 3.0}


def test_recall_vs_exact():
    approx = np.array([[1, 2, 3], [4, 5, 6]])
    exact = np.array([[3, 2, 9], [7, 8, 9]])
    assert metrics.recall_vs_exact(approx, exact) == pytest.approx((2 / 3 + 0) / 2)


def test_cut_offs_never_exceed_the_lists():
    assert metrics.cut_offs((10, 50, 100), 40) == (10, 40)
    assert metrics.cut_offs((10, 100), 3) == (3,)
    assert metrics.cut_offs((10, 50, 100), 1682) == (10, 50, 100)
