"""IndexBuilder: from the trained towers and the full movie catalogue, exports two
retrieval SavedModels with the same signatures, a ScaNN index and a brute-force index
('' pads string [batch, None] inputs; n: num_candidates):

  serving_default(user_id: string [batch]) -> movie_ids string [batch, n], scores float32
      [batch, n], titles string [batch, n], known_user bool [batch] (false: clients fall back to `popular`)
  retrieve(user_id, exclude: string [batch, None], k: int32 []) -> the same, k <= n best, without `exclude`
  retrieve_history(user_id, exclude, k, history: string [batch, None], user_age: int64 [batch],
                   user_gender, user_occupation, user_zip: string [batch])
      -> retrieve's outputs for the query of the towers' `embed_request`, the history also
         excluded, and history_unknown int32 [batch] (movies not in the catalogue, ignored);
         over max_history movies in a row fails (INVALID_ARGUMENT). Only for towers with it.
  popular(k: int32 []) -> movie_ids string [k], titles string [k]: the most-rated movies

Scores are the towers' dot products, best first; each user's training movies are excluded
inside the model; every catalogue movie is indexed. The ScaNN model needs `import scann`.
"""
import collections
import os
from typing import Dict, List

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tfx import v1 as tfx

from components.examples import MOVIE_SPEC, PAIR_SPEC, history, read_examples
from models import features as F
from models.retrieval.constants import MAX_HISTORY
from models.retrieval.towers import HISTORY_SIDE, RaggedTable, request_history, sorted_contains

MAX_EXCLUDE = 100  # extra exclusions `retrieve` is guaranteed to fill past


def _table(keys: list, values, default) -> tf.lookup.StaticHashTable:
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values)), default)


class Retriever(tf.Module):
    """Query tower + index + exclusions (the module docstring's signatures). Each known user's query
    is computed once, here (an unknown user: an unknown id's); seen and excluded movies are dropped
    by sorted keys, the index asked for k plus the batch's most."""

    def __init__(self, towers, index, ids: np.ndarray, titles: np.ndarray, seen: Dict[bytes, List[bytes]],
                 popular: np.ndarray, n: int, max_history: int, batch: int = 1024):
        super().__init__()
        self.index, self.n, self.max_k = index, n, index._k  # TFRS keeps the built k private
        self.max_history = max_history
        self.towers = towers if hasattr(towers, "embed_request") else None  # saved inside: queries per request
        if self.towers is not None:
            self.retrieve_history = tf.function(self._retrieve_history, input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None, None], tf.string, name="exclude"), tf.TensorSpec([], tf.int32, name="k"),
                tf.TensorSpec([None, None], tf.string, name="history"), *HISTORY_SIDE])
        users = sorted(seen)
        queries = [towers.embed_users(tf.constant(users[i:i + batch]))["embeddings"]
                   for i in range(0, len(users), batch)] + [towers.embed_users(tf.constant([b""]))["embeddings"]]
        self.queries = tf.Variable(tf.concat(queries, 0), trainable=False)  # [users + 1, dim], last: unknown
        self.user_row = _table(users, np.arange(len(users), dtype=np.int64), tf.constant(len(users), tf.int64))
        self.movie_index = _table(list(ids), np.arange(len(ids), dtype=np.int64), tf.constant(-1, tf.int64))
        self.num_movies = len(ids)
        position = {movie: i for i, movie in enumerate(ids)}
        rows = [np.array([position[m] for m in seen[user] if m in position], np.int64) for user in users]
        self.seen = RaggedTable(rows + [np.zeros([0], np.int64)], "seen")
        self.titles = _table(list(ids), titles.tolist(), tf.constant(b""))
        self.popular_ids = tf.constant(popular.tolist(), tf.string)

    def _dropped(self, ids: tf.Tensor, banned: tf.RaggedTensor) -> tf.Tensor:
        """bool [B, k]: which of ids [B, k] are among the row's banned catalogue indices [B, None]."""
        rows = tf.range(tf.shape(ids, out_type=tf.int64)[0])
        keys = tf.sort(tf.repeat(rows, banned.row_lengths()) * self.num_movies + banned.flat_values)
        return sorted_contains(keys, rows[:, None] * self.num_movies + self.movie_index.lookup(ids))

    def _answer(self, queries, row, banned, k) -> dict:
        """Top k of queries [B, dim] without row's training movies and `banned` catalogue indices [B, None]."""
        banned = tf.concat([self.seen.gather(row), banned], axis=1)
        k = tf.minimum(k, self.n)  # the index is asked for k plus the batch's most banned movies only
        wanted = tf.minimum(k + tf.cast(tf.maximum(tf.reduce_max(banned.row_lengths()), 0), tf.int32), self.max_k)
        scores, ids = self.index(queries, k=wanted)  # [batch, wanted]
        drop = self._dropped(ids, banned)
        scores, best = tf.math.top_k(tf.where(drop, float("-inf"), scores), k=tf.minimum(k, wanted))
        ids = tf.gather(ids, best, batch_dims=1)
        return {"movie_ids": ids, "scores": scores, "titles": self.titles.lookup(ids),
                "known_user": row < tf.cast(tf.shape(self.queries)[0] - 1, tf.int64)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None, None], tf.string, name="exclude"),
                                  tf.TensorSpec([], tf.int32, name="k")])
    def retrieve(self, user_id, exclude, k):
        row = self.user_row.lookup(user_id)
        excluded = tf.ragged.boolean_mask(self.movie_index.lookup(exclude), tf.not_equal(exclude, ""))
        return self._answer(tf.gather(self.queries, row), row, excluded, k)

    def _retrieve_history(self, user_id, exclude, k, history, user_age, user_gender, user_occupation, user_zip):
        movies = tf.ragged.map_flat_values(self.movie_index.lookup, request_history(history, self.max_history))
        queries = self.towers.embed_request(user_id=user_id, history=history, user_age=user_age,
                                            user_gender=user_gender, user_occupation=user_occupation,
                                            user_zip=user_zip)["embeddings"]
        excluded = tf.ragged.boolean_mask(self.movie_index.lookup(exclude), tf.not_equal(exclude, ""))
        banned = tf.concat([excluded, tf.ragged.boolean_mask(movies, movies >= 0)], axis=1)
        return {**self._answer(queries, self.user_row.lookup(user_id), banned, k),
                "history_unknown": tf.reduce_sum(tf.cast(movies < 0, tf.int32), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        return self.retrieve(user_id, tf.zeros([tf.size(user_id), 0], tf.string), self.n)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="k")])
    def popular(self, k):
        ids = self.popular_ids[:k]
        return {"movie_ids": ids, "titles": self.titles.lookup(ids)}

    def save(self, path: str, scann: bool) -> None:
        signatures = {"serving_default": self.serve, "retrieve": self.retrieve, "popular": self.popular}
        if self.towers is not None:
            signatures["retrieve_history"] = self.retrieve_history
        options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]) if scann else None
        tf.saved_model.save(self, path, options=options, signatures=signatures)


def scann_parameters(num_movies: int, k: int, num_leaves: int = 0, num_leaves_to_search: int = 0,
                     num_reordering_candidates: int = 0) -> Dict[str, int]:
    """ScaNN's knobs for an index of `num_movies` asked for `k`; 0 = the default. Defaults from
    benchmarks/index.py: sqrt(n) leaves, a fifth of them searched, 500 candidates reordered (recall@10
    0.98 at 24x brute force's speed on 1M items); and leaves enough to hold twice k movies, so small
    catalogues are searched whole."""
    leaves = num_leaves or max(1, int(np.sqrt(num_movies)))
    searched = max(leaves // 5, int(np.ceil(2 * k * leaves / num_movies)))
    return {"num_leaves": leaves, "num_leaves_to_search": min(leaves, num_leaves_to_search or searched),
            "num_reordering_candidates": max(k, num_reordering_candidates or 500)}


def build_retrievers(towers, movies: tf.data.Dataset, seen: Dict[bytes, List[bytes]], n: int,
                     scann: dict, max_history: int = MAX_HISTORY) -> dict:
    """{'scann': Retriever, 'bruteforce': Retriever} over every movie of `movies`, both
    indexed and called once (TFRS indexes must be called before saving); `scann`: keyword
    arguments of scann_parameters."""
    ids, titles, embeddings = [], [], []
    for batch in movies:  # every catalogue movie through the candidate tower
        ids.extend(batch[F.MOVIE_ID].numpy())
        titles.extend(batch[F.MOVIE_TITLE].numpy())
        embeddings.append(towers.embed_movies(**batch)["embeddings"])
    ids, titles, embeddings = np.array(ids, dtype=object), np.array(titles, dtype=object), tf.concat(embeddings, 0)
    counts = collections.Counter(movie for rated in seen.values() for movie in rated)
    popular = np.array(sorted(ids, key=lambda m: (-counts[m], m)), dtype=object)
    most_seen = max((len(v) for v in seen.values()), default=0)
    k = min(len(ids), n + most_seen + MAX_EXCLUDE + max_history)  # room to drop every exclusion and keep n
    indexes = {"bruteforce": tfrs.layers.factorized_top_k.BruteForce(k=k),
               "scann": tfrs.layers.factorized_top_k.ScaNN(k=k, **scann_parameters(len(ids), k, **scann))}
    retrievers = {}
    for name, index in indexes.items():
        index.index(embeddings, tf.constant(ids.tolist(), tf.string))
        retrievers[name] = Retriever(towers, index, ids, titles, seen, popular, min(n, len(ids)), max_history)
        retrievers[name].serve(tf.constant(list(seen)[:1] or [b""]))
    return retrievers


@tfx.dsl.components.component
def IndexBuilder(model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
                 examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
                 catalogue: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
                 scann_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
                 bruteforce_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
                 num_candidates: tfx.dsl.components.Parameter[int] = 100,
                 num_leaves: tfx.dsl.components.Parameter[int] = 0,
                 num_leaves_to_search: tfx.dsl.components.Parameter[int] = 0,
                 num_reordering_candidates: tfx.dsl.components.Parameter[int] = 0,
                 max_history: tfx.dsl.components.Parameter[int] = MAX_HISTORY) -> None:
    """Builds the ScaNN and brute-force retrieval SavedModels (0 = a size-based default;
    max_history: most request-history movies per row)."""
    import scann  # noqa: F401  registers ScaNN's ops for saving

    towers = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    retrievers = build_retrievers(
        towers, read_examples(catalogue.uri, "catalogue", MOVIE_SPEC),
        history(read_examples(examples.uri, "train", PAIR_SPEC)), num_candidates,
        {"num_leaves": num_leaves, "num_leaves_to_search": num_leaves_to_search,
         "num_reordering_candidates": num_reordering_candidates}, max_history)
    retrievers["scann"].save(os.path.join(scann_model.uri, "Format-Serving"), scann=True)
    retrievers["bruteforce"].save(os.path.join(bruteforce_model.uri, "Format-Serving"), scann=False)
