"""The two towers and the lookup tables they carry.

Both towers read transformed features (see models/features.py). The query tower needs
only user_id_xf: the user's side features and training history are looked up inside it,
so the exported model serves a raw user id. The candidate tower takes every movie
feature explicitly, so movies nobody rated in training are embedded from their features.
"""
from typing import Dict, List

import numpy as np
import tensorflow as tf

from models import features as F

USER_SIDE = [F.USER_AGE, F.USER_GENDER, F.USER_OCCUPATION, F.USER_ZIP]
MOVIE_BAGS = [F.MOVIE_GENRES, F.MOVIE_TITLE, F.MOVIE_TAGS]


class RaggedTable(tf.Module):
    """Rows of values (ids by default), [rows, None], kept as non-trainable variables (saved with the model)."""

    def __init__(self, rows: List[np.ndarray], name: str, dtype=np.int64):
        super().__init__(name=name)
        lengths = np.array([len(r) for r in rows], np.int64)
        self.splits = tf.Variable(np.concatenate([[0], np.cumsum(lengths)]), trainable=False)
        values = np.concatenate(rows).astype(dtype) if len(rows) else np.zeros([0], dtype)
        self.values = tf.Variable(values, trainable=False, shape=[None])

    def gather(self, rows: tf.Tensor) -> tf.RaggedTensor:
        """int64 [batch] row indices -> int64 ragged [batch, None]."""
        table = tf.RaggedTensor.from_row_splits(self.values, self.splits, validate=False)
        return tf.gather(table, rows)


def sorted_contains(sorted_keys: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
    """bool, the shape of int64 `keys`: which of them are in the sorted int64 vector `sorted_keys`
    (a binary search each: memory and time linear in the two sizes)."""
    padded = tf.concat([sorted_keys, [tf.int64.max]], 0)  # the sentinel keeps every search in range
    flat = tf.reshape(keys, [-1])
    return tf.reshape(tf.equal(tf.gather(padded, tf.searchsorted(padded, flat, out_type=tf.int64)), flat),
                      tf.shape(keys))


class Bag(tf.keras.layers.Layer):
    """Mean of the embeddings of a bag of ids: SparseTensor [batch, None] -> [batch, dim]."""

    def __init__(self, vocab: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab, self.dim = vocab, dim

    def build(self, input_shape):
        self.table = self.add_weight(name="embeddings", shape=[self.vocab, self.dim],
                                     initializer="uniform")

    def call(self, ids: tf.SparseTensor) -> tf.Tensor:
        return tf.nn.safe_embedding_lookup_sparse(self.table, ids, combiner="mean")


def _mlp(layers: List[int], dim: int) -> tf.keras.Sequential:
    return tf.keras.Sequential([tf.keras.layers.Dense(n, activation="relu") for n in layers] +
                               [tf.keras.layers.Dense(dim)])


HISTORY = "history"  # optional query input: ragged movie_id_xf [batch, None], pooled instead of the stored one
SIDE = "side"  # optional query input: int64 [batch, len(USER_SIDE)], used instead of the stored side features
HISTORY_SIDE = [tf.TensorSpec([None], tf.int64, name=F.USER_AGE)] + [  # a new user's side features in requests
    tf.TensorSpec([None], tf.string, name=key) for key in (F.USER_GENDER, F.USER_OCCUPATION, F.USER_ZIP)]


def request_history(history: tf.Tensor, limit: int) -> tf.RaggedTensor:
    """A request's history string [batch, None] ('' pads) -> its movies, ragged [batch, None].

    Raises InvalidArgumentError (the client's INVALID_ARGUMENT) when a row holds more than `limit` movies.
    """
    ragged = tf.ragged.boolean_mask(history, tf.not_equal(history, ""))
    longest = tf.reduce_max(tf.concat([ragged.row_lengths(), [0]], 0))
    with tf.control_dependencies([tf.debugging.assert_less_equal(longest, tf.constant(limit, tf.int64), message=(
            f"history: a row holds more movies than the limit of {limit} (max_history); "
            "send only the movies rated since training, the most recent first"))]):
        return tf.ragged.map_flat_values(tf.identity, ragged)


def distinct(rows: tf.RaggedTensor, width: int) -> tf.RaggedTensor:
    """int64 ragged [batch, None] ids below `width` -> each row's distinct ids, sorted (sorted keys)."""
    keys = tf.sort(tf.unique(rows.value_rowids() * width + rows.flat_values).y)
    return tf.RaggedTensor.from_value_rowids(keys % width, keys // width, nrows=rows.nrows())


def coin(users: tf.Tensor, movies: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A fair coin per (user, movie, seed), float32 in [0, 1), same shape as `movies`
    (`users` broadcasts against it); the same arguments always give the same value."""
    key = tf.strings.join([tf.strings.as_string(users), tf.strings.as_string(movies), tf.strings.as_string(seed)], "/")
    return tf.cast(tf.strings.to_hash_bucket_fast(key, 1 << 20), tf.float32) / (1 << 20)


class QueryTower(tf.keras.Model):
    """user_id_xf int64 [batch] -> float32 [batch, dim], unit norm.

    The user's id embedding, side features and the mean embedding of the movies they
    rated in training (or of the movies HISTORY gives, in place of the stored ones); SIDE
    replaces the stored side features.
    """

    def __init__(self, side: np.ndarray, history: List[np.ndarray], sizes: Dict[str, int], dim: int,
                 layers: List[int], use_history: bool = True):
        super().__init__()
        self.side = tf.Variable(side, trainable=False)  # int64 [users, len(USER_SIDE)]
        self.history = RaggedTable(history, "history")  # movie_id_xf [users, None]
        self.use_history = use_history
        self.user = tf.keras.layers.Embedding(sizes[F.USER_ID], dim)
        self.side_embeddings = [tf.keras.layers.Embedding(sizes[key], 8) for key in USER_SIDE]
        self.watched = tf.keras.layers.Embedding(sizes[F.MOVIE_ID], dim)
        self.mlp = _mlp(layers, dim)

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        user = inputs[F.transformed_name(F.USER_ID)]
        side = inputs[SIDE] if SIDE in inputs else tf.gather(self.side, user)
        parts = [self.user(user)] + [emb(side[:, i]) for i, emb in enumerate(self.side_embeddings)]
        if self.use_history:
            history = inputs[HISTORY] if HISTORY in inputs else self.history.gather(user)  # [batch, None]
            watched = tf.ragged.map_flat_values(self.watched, history)  # [batch, None, dim]
            count = tf.cast(tf.maximum(history.row_lengths(), 1), tf.float32)[:, None]
            parts.append(tf.reduce_sum(watched, axis=1) / count)
        return tf.math.l2_normalize(self.mlp(tf.concat(parts, axis=1)), axis=1)


class CandidateTower(tf.keras.Model):
    """movie_id_xf, movie_year_xf [batch]; genres, title, tags SparseTensors [batch, None]
    -> float32 [batch, dim], unit norm."""

    def __init__(self, sizes: Dict[str, int], dim: int, layers: List[int]):
        super().__init__()
        self.movie = tf.keras.layers.Embedding(sizes[F.MOVIE_ID], dim)
        self.year = tf.keras.layers.Embedding(sizes[F.MOVIE_YEAR], 8)
        self.bags = [Bag(sizes[key], dim // 2, name=f"{key}_bag") for key in MOVIE_BAGS]
        self.mlp = _mlp(layers, dim)

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [self.movie(inputs[F.transformed_name(F.MOVIE_ID)]),
                 self.year(inputs[F.transformed_name(F.MOVIE_YEAR)])]
        parts += [bag(inputs[F.transformed_name(key)]) for bag, key in zip(self.bags, MOVIE_BAGS, strict=True)]
        return tf.math.l2_normalize(self.mlp(tf.concat(parts, axis=1)), axis=1)


class MovieTable(tf.Module):
    """The transformed features of every movie in the train split, by movie_id_xf,
    so sampled negatives can go through the candidate tower."""

    def __init__(self, year: np.ndarray, bags: Dict[str, List[np.ndarray]]):
        super().__init__()
        self.year = tf.Variable(year, trainable=False)  # int64 [movies]
        self.bags = {key: RaggedTable(rows, key) for key, rows in bags.items()}

    def gather(self, movies: tf.Tensor) -> Dict[str, tf.Tensor]:
        """int64 movie_id_xf [n] -> the candidate tower's inputs for those movies."""
        out = {F.transformed_name(F.MOVIE_ID): movies,
               F.transformed_name(F.MOVIE_YEAR): tf.gather(self.year, movies)}
        for key, table in self.bags.items():
            out[F.transformed_name(key)] = table.gather(movies).to_sparse()
        return out
