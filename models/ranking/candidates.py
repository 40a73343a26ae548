"""The listwise ranker's training lists: a retrieval model's candidates for training users.

A seeded `holdout` share of each training user's movies are the positives, the rest the
history. A retrieval model trained on the histories alone (the served one saw the positives)
scores every train movie, the history masked, keeping the `num_candidates` best as serving
does; held-out movies are labelled 1. The pairs' features come from a `Relations` built from
the histories alone (stacking). The eval split is never read.
"""
import hashlib
from typing import Dict, List, Tuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
import tensorflow_transform as tft

from models import features as F
from models.ranking import relations as R
from models.ranking.constants import RankingConfig


def holdout(history: List[np.ndarray], share: float, seed: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Splits each user's movies: (kept [users] arrays, held out [users] arrays).

    A movie is held out when a hash of (seed, user, movie) falls under `share`; a user
    always keeps at least one movie (their first by index) in the history.
    """
    kept, held = [], []
    for user, movies in enumerate(history):
        coin = np.array([int.from_bytes(hashlib.sha256(f"{seed}|{user}|{m}".encode()).digest()[:4], "little")
                         for m in movies], np.float64) / 2 ** 32
        out = coin < share
        if len(movies) and out.all():
            out[0] = False
        kept.append(movies[~out])
        held.append(movies[out])
    return kept, held


def top_candidates(queries: np.ndarray, embeddings: np.ndarray, history: List[np.ndarray], n: int,
                   batch: int = 512) -> np.ndarray:
    """int64 [U, n] the n best movies of each user by q_u . e_m, the user's history masked."""
    rows = []
    n = min(n, embeddings.shape[0])
    for start in range(0, len(queries), batch):
        scores = queries[start:start + batch] @ embeddings.T  # [b, movies]
        for row, movies in enumerate(history[start:start + batch]):
            scores[row, np.asarray(movies, np.int64)] = -np.inf
        best = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        rows.append(np.take_along_axis(best, order, axis=1))
    return np.concatenate(rows).astype(np.int64)


def choose_lambda(kept: List[np.ndarray], held: List[np.ndarray], num_movies: int, grid: Tuple[float, ...],
                  max_users: int = 2000, k: int = 20) -> Dict[float, float]:
    """EASE's recall@k of the held-out movies from the kept ones, for each L2 weight in `grid`
    (over at most `max_users` users with held-out movies, the first ones)."""
    users = [u for u, movies in enumerate(held) if len(movies)][:max_users]
    matrix = interaction_matrix(kept, num_movies)
    recall = {}
    for lam in grid:
        items, weights = R.ease_weights(matrix, lam)
        seen = matrix[users][:, items]
        scores = seen @ weights  # [users, items]
        scores[seen.nonzero()] = -np.inf
        top = items[np.argpartition(-scores, min(k, len(items)) - 1, axis=1)[:, :k]]
        recall[lam] = float(np.mean([np.isin(held[u], top[i]).sum() / min(len(held[u]), k)
                                     for i, u in enumerate(users)]))
    return recall


def interaction_matrix(history: List[np.ndarray], num_movies: int) -> sp.csr_matrix:
    """float32 [len(history), num_movies]: 1 where history[u] holds the movie."""
    users, movies = pairs(history)
    return sp.csr_matrix((np.ones(len(users), np.float32), (users, movies)), shape=(len(history), num_movies))


def pairs(history: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(users [n], movies [n]) of per-user movie arrays."""
    users = np.repeat(np.arange(len(history), dtype=np.int64), [len(h) for h in history])
    return users, (np.concatenate(history).astype(np.int64) if history else np.zeros([0], np.int64))


def held_out_examples(files: List[str], tft_output: tft.TFTransformOutput, held: List[np.ndarray],
                      path: str) -> str:
    """Writes the transformed examples of `files` less the held-out (user, movie) pairs to `path`."""
    user_key, movie_key = F.transformed_name(F.USER_ID), F.transformed_name(F.MOVIE_ID)
    spec = {key: tft_output.transformed_feature_spec()[key] for key in (user_key, movie_key)}
    width = F.vocabulary_size(tft_output, F.MOVIE_ID)
    users, movies = pairs(held)
    out = np.sort(users * width + movies)
    names = [name for pattern in files for name in tf.io.gfile.glob(pattern)]
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for records in tf.data.TFRecordDataset(names, compression_type="GZIP").batch(4096):
            parsed = tf.io.parse_example(records, spec)
            keys = parsed[user_key].numpy() * width + parsed[movie_key].numpy()
            for record, drop in zip(records.numpy(), np.isin(keys, out), strict=True):
                if not drop:
                    writer.write(record)
    return path


def training_lists(towers, user_ids: np.ndarray, movie_ids: np.ndarray, kept: List[np.ndarray],
                   held: List[np.ndarray], genres: np.ndarray, config: RankingConfig) -> Dict[str, np.ndarray]:
    """The listwise training data (see the module docstring) from `towers` trained on `kept` only;
    user_ids, movie_ids: raw ids by vocabulary index; kept, held: per user, movie indices;
    genres: float32 [movies, G] multi-hot.

    Returns:
      users [L], candidates [L, N], features float32 [L, N, F], labels float32 [L, N] for the L
      users with a held-out movie among their candidates; `lambda` (EASE's, chosen on the
      held-out movies) and `lambda_recall`.
    """
    num_users, num_movies = len(kept), len(genres)
    recall = choose_lambda(kept, held, num_movies, tuple(config.ease_lambdas))
    lam = max(recall, key=recall.get)
    embeddings = pad_rows(towers.movie_embeddings()["embeddings"].numpy(), num_movies)
    queries = pad_rows(np.concatenate([towers.embed_users(user_id=tf.constant(list(user_ids[i:i + 1024])))[
        "embeddings"].numpy() for i in range(0, len(user_ids), 1024)]), num_users)
    candidates = top_candidates(queries, embeddings[:len(movie_ids)], kept, config.num_candidates)  # no OOV
    labels = np.stack([np.isin(row, movies) for row, movies in zip(candidates, held, strict=True)]).astype(np.float32)
    users = np.flatnonzero(labels.sum(axis=1) > 0)
    relations = R.Relations(*pairs(kept), num_users, num_movies, queries, embeddings, genres, lam,
                            config.neighbours)
    return {"users": users, "candidates": candidates[users], "labels": labels[users],
            "features": R.features_of(relations, users, candidates[users]), "lambda": lam,
            "lambda_recall": recall}


def pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """Rows for the vocabulary, zero rows appended up to `size` (the OOV bucket)."""
    return np.concatenate([rows, np.zeros([size - len(rows), rows.shape[1]], rows.dtype)])
