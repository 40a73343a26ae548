"""How retrieved candidates are ordered: the one policy the client and the benchmarks share.

  ranking    by the ranking model's score, higher first (the default);
  retrieval  the retrieval model's own order (its scores, higher first);
  fused      reciprocal rank fusion of both orders: 1 / (60 + rank) from each, ranks from 1.

Ties keep the retrieval order. The ranking model's score is its `score` output (the
listwise re-ranking score). numpy only: importable without TensorFlow.
"""
from typing import Sequence

import numpy as np

ORDERS = ("ranking", "retrieval", "fused")
RANKING_OUTPUT = "score"  # the ranking model's output the "ranking" order sorts by
ORDERED_BY = {"ranking": RANKING_OUTPUT, "retrieval": "retrieval_score",  # each order's key, in words
              "fused": f"fused ranks of retrieval_score and {RANKING_OUTPUT}"}
RRF_K = 60


def ranks(scores: Sequence[float]) -> np.ndarray:
    """1-based rank of each score, higher first; ties by position."""
    positions = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.argsort(positions).astype(np.int64) + 1  # the inverse permutation: each score's place


def sort_keys(retrieval_scores: Sequence[float], ranking_scores: Sequence[float], how: str) -> np.ndarray:
    """The value each candidate is ordered by under `how`, higher first."""
    if how == "ranking":
        return np.asarray(ranking_scores, dtype=np.float64)
    if how == "retrieval":
        return np.asarray(retrieval_scores, dtype=np.float64)
    if how == "fused":
        return 1.0 / (RRF_K + ranks(retrieval_scores)) + 1.0 / (RRF_K + ranks(ranking_scores))
    raise ValueError(f"Unknown order {how!r}; use one of {ORDERS}")


def order(retrieval_scores: Sequence[float], ranking_scores: Sequence[float], how: str = "ranking") -> np.ndarray:
    """Indices of the candidates, best first, under `how` (one of ORDERS; see the module docstring),
    from each candidate's retrieval and ranking scores (higher is better)."""
    if len(retrieval_scores) != len(ranking_scores):
        raise ValueError(f"{len(retrieval_scores)} retrieval scores and {len(ranking_scores)} ranking scores: "
                         "one of each per candidate")
    keys = sort_keys(retrieval_scores, ranking_scores, how)
    return np.lexsort((ranks(retrieval_scores), -keys))  # by key, higher first; ties: retrieval order
