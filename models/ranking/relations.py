"""What relates a candidate movie to a user: the features the listwise ranker reads.

Built from (user, movie) interactions and the retrieval towers' embeddings: for training
from the histories less the held-out movies, for serving from the whole train split.

Features of a (user, candidate) pair, float32 [batch, len(NAMES)]:
  retrieval   q_u . e_c, the retrieval towers' score of the candidate for the user
  similarity  mean over the user's history h of e_h . e_c
  ease        sum over the history of EASE's weight B[h, c] (Steck 2019), each movie
              keeping its `neighbours` strongest incoming weights
  genre       mean genre overlap of the candidate with the history
  popularity  log(1 + the candidate's number of interactions)
Ids are vocabulary indices (OOV: empty history, zero embeddings). Tables are per user, per
movie or of fixed neighbour width, never users x movies.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from models.retrieval.towers import RaggedTable, distinct, sorted_contains

NAMES = ("retrieval", "similarity", "ease", "genre", "popularity")
MASK_CELLS = 1 << 22  # the largest users x movies history mask a call builds (else sorted searches)


def ease_weights(matrix: sp.csr_matrix, lam: float, max_items: int = 6_000) -> Tuple[np.ndarray, np.ndarray]:
    """EASE's item-item weights (Steck 2019) with L2 weight `lam`, from binary interactions
    [users, movies], solved over the `max_items` most interacted movies (a dense inverse).

    Returns:
      (items int64 [n], weights float32 [n, n]): B[h, c] for movies items[h], items[c]; a
      user's EASE score of c is the sum of B[h, c] over the h in their history.
    """
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    items = np.flatnonzero(counts)[np.argsort(-counts[counts > 0], kind="stable")][:max_items]
    sub = matrix[:, items].astype(np.float64)
    gram = (sub.T @ sub).toarray()
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]  # B[h, c] = -P[h, c] / P[c, c]
    weights[np.diag_indices_from(weights)] = 0.0
    return items.astype(np.int64), weights.astype(np.float32)


def ease_neighbours(matrix: sp.csr_matrix, lam: float, neighbours: int) -> Tuple[list, list]:
    """EASE's weights kept sparse: per movie c, its `neighbours` strongest incoming weights.

    Returns:
      (ids, weights): per movie, int64 [<= neighbours] movies h and float32 B[h, c].
    """
    items, weights = ease_weights(matrix, lam)
    keep = min(neighbours, len(items))
    ids = [np.zeros([0], np.int64)] * matrix.shape[1]
    values = [np.zeros([0], np.float32)] * matrix.shape[1]
    if keep:
        best = np.argpartition(-np.abs(weights), keep - 1, axis=0)[:keep]  # [keep, n]: rows of each column
        for column, movie in enumerate(items):
            ids[movie] = items[best[:, column]]
            values[movie] = weights[best[:, column], column]
    return ids, values


class Relations(tf.Module):
    """Tables over users and movies, and the features of (user, movie) pairs.

    Args:
      users, movies: int64 [n] the interactions (vocabulary indices).
      num_users, num_movies: table sizes (vocabulary sizes, OOV bucket included).
      queries, embeddings: float32 [num_users, dim] and [num_movies, dim], the retrieval towers'.
      genres: float32 [num_movies, G] multi-hot genres.
      lam, neighbours: EASE's L2 weight and the weights kept per movie.
    """

    def __init__(self, users: np.ndarray, movies: np.ndarray, num_users: int, num_movies: int,
                 queries: np.ndarray, embeddings: np.ndarray, genres: np.ndarray, lam: float,
                 neighbours: int, name: Optional[str] = None):
        super().__init__(name=name)
        users, movies = np.asarray(users, np.int64), np.asarray(movies, np.int64)
        matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, movies)), shape=(num_users, num_movies))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        self.num_movies = num_movies
        self.count = tf.Variable(np.diff(matrix.indptr).astype(np.float32), trainable=False)  # [users]
        count = np.maximum(np.diff(matrix.indptr), 1).astype(np.float32)[:, None]  # [users, 1]
        pairs = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(matrix.indptr)) * num_movies + matrix.indices
        self.pairs = tf.Variable(np.sort(pairs), trainable=False)  # user * num_movies + movie, sorted
        self.queries = tf.Variable(np.asarray(queries, np.float32), trainable=False)
        self.embeddings = tf.Variable(np.asarray(embeddings, np.float32), trainable=False)
        self.mean_history = tf.Variable(np.asarray((matrix @ embeddings) / count, np.float32),
                                        trainable=False)  # [users, dim]
        share = genres / np.maximum(genres.sum(axis=1, keepdims=True), 1.0)  # each movie's genres sum to 1
        self.profile = tf.Variable(np.asarray((matrix @ genres) / count, np.float32),
                                   trainable=False)  # [users, G] genre shares
        self.genres = tf.Variable(share.astype(np.float32), trainable=False)
        self.multi_hot = tf.Variable(np.asarray(genres, np.float32), trainable=False)  # [movies, G]
        self.log_count = tf.Variable(np.log1p(np.asarray(matrix.sum(axis=0)).ravel()).astype(np.float32),
                                     trainable=False)
        self.history = RaggedTable(np.split(matrix.indices.astype(np.int64), matrix.indptr[1:-1]), "history")
        ids, weights = ease_neighbours(matrix, lam, neighbours)
        width = max((len(row) for row in ids), default=0)  # rows padded with weight 0
        self.near = tf.Variable(np.stack([np.pad(r, (0, width - len(r))) for r in ids]).reshape(len(ids), width),
                                trainable=False)
        self.near_weights = tf.Variable(np.stack([np.pad(r, (0, width - len(r))) for r in weights]).reshape(
            len(ids), width).astype(np.float32), trainable=False)

    def __call__(self, user: tf.Tensor, movie: tf.Tensor, history: Optional[tf.RaggedTensor] = None,
                 queries: Optional[tf.Tensor] = None) -> tf.Tensor:
        """int64 user, movie [B] -> float32 [B, len(NAMES)].

        history: int64 ragged [B, None], movies (below num_movies - 1) each row's user rated
        since the tables were built: the history features pool them with the stored ones.
        queries: float32 [B, dim], each row's retrieval query in place of the stored one.
        """
        user = tf.minimum(user, tf.shape(self.queries, out_type=tf.int64)[0] - 1)  # OOV: the last row
        movie = tf.minimum(movie, tf.cast(self.num_movies - 1, tf.int64))
        extra = None  # without a request history (serving_default), the stored tables alone
        if history is not None:
            history = distinct(history, self.num_movies)
            stored = sorted_contains(self.pairs, tf.repeat(user, history.row_lengths()) * self.num_movies
                                     + history.flat_values)
            extra = tf.ragged.boolean_mask(history, history.with_flat_values(~stored))  # [B, None] not stored
            before = tf.gather(self.count, user)[:, None]  # [B, 1]
            total = tf.maximum(before + tf.cast(extra.row_lengths(), tf.float32)[:, None], 1.0)

        def pooled(table, mean):  # the mean over stored + extra movies, [B, width]
            if extra is None:
                return tf.gather(mean, user)
            return (tf.gather(mean, user) * before + tf.reduce_sum(tf.gather(table, extra), axis=1)) / total
        candidate = tf.gather(self.embeddings, movie)  # [B, dim]
        near = tf.gather(self.near, movie)  # [B, width] movies h with a weight B[h, c] (0: padding)
        users, row = tf.unique(user)
        cells = tf.size(users, out_type=tf.int64) * self.num_movies

        def mask():  # the call's users' histories over the catalogue (flat [users x movies]), in one scatter
            history = self.history.gather(users)
            at = history.value_rowids() * self.num_movies + history.flat_values
            seen = tf.scatter_nd(at[:, None], tf.ones_like(at, tf.float32), cells[None])
            return tf.gather(seen, tf.cast(row, tf.int64)[:, None] * self.num_movies + near)

        def search():  # many users x a large catalogue: a sorted search per neighbour instead
            return tf.cast(sorted_contains(self.pairs, user[:, None] * self.num_movies + near), tf.float32)
        seen = tf.cond(cells <= MASK_CELLS, mask, search)  # the stored history...
        if extra is not None:  # ...or the request's
            rows = tf.range(tf.size(user, out_type=tf.int64))[:, None]  # [B, 1]
            keys = extra.value_rowids() * self.num_movies + extra.flat_values  # sorted
            seen = tf.maximum(seen, tf.cast(sorted_contains(keys, rows * self.num_movies + near), tf.float32))
        ease = tf.reduce_sum(seen * tf.gather(self.near_weights, movie), axis=1)
        queries = tf.gather(self.queries, user) if queries is None else queries
        return tf.stack([
            tf.reduce_sum(queries * candidate, axis=1),
            tf.reduce_sum(pooled(self.embeddings, self.mean_history) * candidate, axis=1), ease,
            tf.reduce_sum(pooled(self.multi_hot, self.profile) * tf.gather(self.genres, movie), axis=1),
            tf.gather(self.log_count, movie)], axis=1)


def genre_matrix(bags: list, num_genres: int) -> np.ndarray:
    """Per movie an int64 array of genre ids -> float32 multi-hot [movies, num_genres]."""
    out = np.zeros([len(bags), num_genres], np.float32)
    for row, ids in enumerate(bags):
        out[row, np.asarray(ids, np.int64)] = 1.0
    return out


def features_of(relations: Relations, users: np.ndarray, candidates: np.ndarray, batch: int = 20_000) -> np.ndarray:
    """float32 [U, N, F] features of each user's candidate list (users [U], candidates [U, N])."""
    flat_users = np.repeat(np.asarray(users, np.int64), candidates.shape[1])
    flat = np.asarray(candidates, np.int64).reshape(-1)
    out = [relations(tf.constant(flat_users[i:i + batch]), tf.constant(flat[i:i + batch])).numpy()
           for i in range(0, len(flat), batch)]
    return np.concatenate(out).reshape(candidates.shape + (len(NAMES),))


def describe(features: np.ndarray) -> Dict[str, float]:
    """Mean of each feature (for the training log)."""
    return {name: float(features[..., i].mean()) for i, name in enumerate(NAMES)}
