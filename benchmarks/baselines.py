"""The classic baselines on ML-100K under the protocol of benchmarks/PROTOCOL.md.

Protocol: a random 80/20 split of all 100,000 ratings (numpy default_rng(42).permutation of
the u.data rows in file order, first 80% train); every rating is an interaction; each test
user ranks all 1,682 movies with their training movies masked.

    from benchmarks import baselines
    from components.movielens_formats import parse_movie, parse_rating
from components.movielens_tables import read_lines, read_table
from models import metrics
    train, test = baselines.stack_split(data_dir)
    data = baselines.interactions(train, test, baselines.movie_ids(data_dir))
    top = baselines.top_k_masked(baselines.ease_scores(data.train), data.train, k=100)
    metrics.ranking_metrics(top, data.relevant)   # EASE: recall@10 0.234, ndcg@10 0.441

Run as a script it prints popularity's and EASE's figures:
    python -m benchmarks.baselines [--data-dir /path/to/ml-100k]
"""
import argparse
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from components.movielens_formats import parse_movie, parse_rating
from components.movielens_tables import read_lines, read_table
from models import metrics

SEED = 42
TRAIN_FRACTION = 0.8
# The copy the Makefile uses too: shared/data/movielens beside the checkout.
SHARED_ML100K = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                             "movielens", "ml-100k")


def find_data_dir(data_dir: Optional[str] = None) -> Optional[str]:
    """data_dir, else $MOVIELENS_DIR, else the machine's shared copy; None if none has u.data."""
    for candidate in (data_dir, os.environ.get("MOVIELENS_DIR"), SHARED_ML100K):
        if candidate and os.path.exists(os.path.join(candidate, "u.data")):
            return candidate
    return None


def stack_split(data_dir: str) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) ratings of u.data, as benchmarks/PROTOCOL.md's reference split.

    Returns:
        Two DataFrames with columns user_id, movie_id (str, as in u.data), rating (float),
        timestamp (int); 80,000 and 20,000 rows for ML-100K.
    """
    path = os.path.join(data_dir, "u.data")
    if not os.path.exists(path):
        raise FileNotFoundError(f"stack_split: no u.data in {data_dir}; pass the ml-100k "
                                "directory (or set MOVIELENS_DIR)")
    ratings = pd.DataFrame([parse_rating(text, where) for where, text in read_lines(path)],
                           columns=["user_id", "movie_id", "rating", "timestamp"])
    order = np.random.default_rng(SEED).permutation(len(ratings))
    cut = int(TRAIN_FRACTION * len(ratings))
    return (ratings.iloc[order[:cut]].reset_index(drop=True),
            ratings.iloc[order[cut:]].reset_index(drop=True))


def movie_ids(data_dir: str) -> List[str]:
    """The movie ids of u.item (all 1,682 for ML-100K, duplicates unmerged), as strings, in file order."""
    return list(read_table(os.path.join(data_dir, "u.item"), parse_movie))


class Interactions(NamedTuple):
    """Index maps, the binary train matrix and each user's test items."""
    users: Dict[str, int]  # user id -> row
    items: Dict[str, int]  # movie id -> column
    train: sp.csr_matrix  # float32 [U, I], 1 where the user rated the movie in train
    relevant: List[Set[int]]  # [U] columns of the user's test movies (empty if none)


def interactions(train: pd.DataFrame, test: pd.DataFrame,
                 movies: Optional[Sequence[str]] = None) -> Interactions:
    """Binary user x movie interactions of both splits.

    Args:
        train, test: ratings with user_id and movie_id columns.
        movies: the catalogue (columns, in this order), e.g. movie_ids(data_dir); by default
            the movies of both splits, in numeric order. Test movies outside it are dropped.

    Returns:
        Interactions over every user of either split (rows in numeric order).
    """
    def ordered(values):
        return sorted(set(values), key=lambda v: (len(v), v))  # numeric order of digit strings

    users = {u: i for i, u in enumerate(ordered(pd.concat([train.user_id, test.user_id])))}
    items = {m: i for i, m in enumerate(movies if movies is not None
                                        else ordered(pd.concat([train.movie_id, test.movie_id])))}
    rows, cols = train.user_id.map(users).to_numpy(), train.movie_id.map(items)
    if cols.isna().any():
        raise ValueError(f"interactions: train movies {sorted(set(train.movie_id[cols.isna()]))[:5]} "
                         "are not in the catalogue; pass the full movie list")
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols.to_numpy(np.int64))),
                           shape=(len(users), len(items)))
    matrix.data[:] = 1.0  # a repeated (user, movie) pair is one interaction
    relevant: List[Set[int]] = [set() for _ in users]
    for user, movie in zip(test.user_id, test.movie_id, strict=True):
        if movie in items:
            relevant[users[user]].add(items[movie])
    return Interactions(users, items, matrix, relevant)


def popularity_scores(train: sp.spmatrix) -> np.ndarray:
    """float64 [U, I]: every user scores a movie by its number of training interactions."""
    counts = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()  # [I]
    return np.tile(counts, (train.shape[0], 1))


def ease_scores(train: sp.spmatrix, lam: float = 500.0, rows: Optional[sp.spmatrix] = None) -> np.ndarray:
    """float64 [U, I] scores of EASE (Steck 2019) in closed form, with L2 weight lam.

    B = I - P / diag(P) with P = (X^T X + lam I)^-1, so diag(B) = 0; scores = X B, or with
    `rows` [R, I] (users folded in, e.g. new ones: B needs no refit) float64 [R, I] rows B.
    """
    x = sp.csr_matrix(train, dtype=np.float64)
    gram = (x.T @ x).toarray()  # [I, I]
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return np.asarray((x if rows is None else sp.csr_matrix(rows, dtype=np.float64)) @ b)


def top_k_masked(scores: np.ndarray, mask: Union[np.ndarray, sp.spmatrix], k: int) -> np.ndarray:
    """The k best unmasked items of each user, best first.

    Args:
        scores: float [U, I], higher is better (finite values).
        mask: bool [U, I] or a scipy sparse matrix [U, I] whose stored non-zeros are the
            items to exclude (e.g. the training interactions).
        k: items per user, 1 <= k <= I.

    Returns:
        int64 [U, k] item indices; a user with n < k unmasked items gets -1 in the last
        k - n places. Masked items are never returned.
    """
    scores = np.asarray(scores)
    mask = mask if sp.issparse(mask) else np.asarray(mask, dtype=bool)
    if scores.ndim != 2 or mask.shape != scores.shape:
        raise ValueError(f"top_k_masked: scores {scores.shape} and mask {mask.shape} must be "
                         "the same [users, items] shape")
    num_users, num_items = scores.shape
    if not 1 <= k <= num_items:
        raise ValueError(f"top_k_masked: k={k} must be between 1 and the {num_items} items")
    scores = np.array(scores, dtype=np.result_type(scores.dtype, np.float32))  # a copy
    if sp.issparse(mask):
        mask = sp.csr_matrix(mask, dtype=bool)
        mask.sum_duplicates()
        mask.eliminate_zeros()
        per_user = np.diff(mask.indptr)
        scores[np.repeat(np.arange(num_users), per_user), mask.indices] = -np.inf
    else:
        per_user = mask.sum(axis=1)
        scores[mask] = -np.inf
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [U, k], unordered
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(best, order, axis=1).astype(np.int64)
    top[np.arange(k)[None, :] >= (num_items - per_user)[:, None]] = -1  # ran out of items
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="ml-100k directory (default: $MOVIELENS_DIR, then "
                        f"{SHARED_ML100K})")
    args = parser.parse_args()
    data_dir = find_data_dir(args.data_dir)
    if data_dir is None:
        raise SystemExit("No ml-100k found: pass --data-dir or set MOVIELENS_DIR.")

    data = interactions(*stack_split(data_dir), movie_ids(data_dir))
    for name, scores in (("popularity", popularity_scores), ("ease", ease_scores)):
        top = top_k_masked(scores(data.train), data.train, k=100)
        result = metrics.ranking_metrics(top, data.relevant)
        print(f"{name:10s} " + "  ".join(f"{key} {result[key]:.3f}"
                                         for key in ("recall@10", "ndcg@10", "recall@100")))


if __name__ == "__main__":
    main()
