"""Retrieval metrics over ranked item lists, in numpy, by the protocol of benchmarks/PROTOCOL.md.
Item indices are columns of the score matrix; -1 in a top list means "no item" (never a hit)."""
from typing import Dict, Iterable, Sequence

import numpy as np


def _hits(top_items: np.ndarray, relevant: Sequence[Iterable[int]]) -> tuple:
    """(hits bool [U', K], relevant counts [U']) for the users with a relevant item."""
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or len(relevant) != len(top_items):
        raise ValueError(f"ranking_metrics: top_items {top_items.shape} needs one relevant "
                         f"set per row, got {len(relevant)}")
    hits, counts = [], []
    for row, items in zip(top_items, relevant, strict=True):
        items = np.unique(np.fromiter(items, dtype=np.int64))
        if len(items):
            hits.append(np.isin(row, items))
            counts.append(len(items))
    if not hits:
        raise ValueError("ranking_metrics: no user has a relevant item; check the test split")
    return np.array(hits), np.array(counts)


def cut_offs(ks: Sequence[int], width: int) -> tuple:
    """The cut-offs `ks`, each at most `width` (the top lists' length: a small catalogue), sorted."""
    return tuple(sorted({min(k, width) for k in ks}))


def ranking_metrics(top_items: np.ndarray, relevant: Sequence[Iterable[int]],
                    ks: Sequence[int] = (10, 50, 100)) -> Dict[str, float]:
    """Accuracy of top lists against each user's relevant items, averaged over the users with
    one; gains are binary.

    Args:
        top_items: int [U, K] item indices, best first (-1 = no item).
        relevant: U collections of relevant item indices (sets, lists or arrays).
        ks: cut-offs, each at most K.

    Returns:
        {'recall@k', 'precision@k', 'ndcg@k', 'map@k', 'hit_rate@k'} for each k in ks, and
        'mrr' over the whole list; ndcg@k's ideal DCG and map@k's divisor: min(|relevant|, k) hits.
    """
    hits, counts = _hits(top_items, relevant)  # [U', K], [U']
    width = hits.shape[1]
    if max(ks) > width:
        raise ValueError(f"ranking_metrics: cut-off {max(ks)} is wider than the top lists "
                         f"({width} items); rank at least {max(ks)} items per user")
    discounts = 1.0 / np.log2(np.arange(2, width + 2))  # [K]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, width + 1)  # [U', K]
    result = {}
    for k in ks:
        found = hits[:, :k].sum(axis=1)
        ideal = np.minimum(counts, k)
        result[f"recall@{k}"] = float(np.mean(found / counts))
        result[f"precision@{k}"] = float(np.mean(found / k))
        dcg = (hits[:, :k] * discounts[:k]).sum(axis=1)
        result[f"ndcg@{k}"] = float(np.mean(dcg / np.cumsum(discounts)[ideal - 1]))
        result[f"map@{k}"] = float(np.mean((precision_at[:, :k] * hits[:, :k]).sum(axis=1) / ideal))
        result[f"hit_rate@{k}"] = float(np.mean(found > 0))
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    result["mrr"] = float(np.mean(1.0 / first))
    return result


def beyond_accuracy(top_items: np.ndarray, k: int, item_popularity: np.ndarray, num_users: int,
                    item_features: np.ndarray) -> Dict[str, float]:
    """Catalogue coverage, intra-list diversity and novelty of the top-k lists.

    Args:
        top_items: int [U, K] item indices, best first (-1 = no item), K >= k.
        k: cut-off.
        item_popularity: [I] training interactions per item (an item never seen counts as
            seen once, so its novelty stays finite).
        num_users: users in the training data (popularity / num_users is a probability).
        item_features: [I, F] item descriptors, e.g. genre multi-hot.

    Returns:
        coverage@k (distinct recommended items / I), diversity@k (mean over users of the mean
        1 - cosine(features) over pairs in the list; an all-zero row has cosine 0) and
        novelty@k (mean over recommendations of -log2(popularity / num_users)).
    """
    top = np.asarray(top_items)[:, :k]
    if top.shape[1] < k:
        raise ValueError(f"beyond_accuracy: k={k} is wider than the top lists ({top.shape[1]})")
    valid = top >= 0  # [U, k]
    items = np.where(valid, top, 0)
    features = np.asarray(item_features, dtype=np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)[items]  # [U, k, F]
    similarity = np.einsum("ukf,ujf->ukj", unit, unit)  # [U, k, k]
    pairs = valid[:, :, None] & valid[:, None, :] & ~np.eye(k, dtype=bool)[None]
    per_user = pairs.sum(axis=(1, 2))
    diversity = ((1.0 - similarity) * pairs).sum(axis=(1, 2))[per_user > 0] / per_user[per_user > 0]
    popularity = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    surprise = -np.log2(popularity / num_users)[items]  # [U, k]
    return {f"coverage@{k}": len(np.unique(top[valid])) / len(popularity),
            f"diversity@{k}": float(diversity.mean()) if len(diversity) else 0.0,
            f"novelty@{k}": float(surprise[valid].mean())}


def recall_vs_exact(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over users of |approx_u & exact_u| / k: int [U, k'] item indices from an approximate
    index against int [U, k] from exact search (1.0 = the index missed nothing)."""
    approx, exact = np.asarray(approx), np.asarray(exact)
    if len(approx) != len(exact):
        raise ValueError(f"recall_vs_exact: {len(approx)} approximate and {len(exact)} exact "
                         "rows; pass the same queries to both")
    found = (exact[:, :, None] == approx[:, None, :]).any(axis=2)  # [U, k]
    return float(found.mean())
