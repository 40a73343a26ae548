"""IndexBuilder: from the trained towers and the movies in the examples, exports two
retrieval SavedModels with one signature, a ScaNN index and a brute-force index:

  serving_default(user_id: string [batch])
      -> movie_ids string [batch, n], scores float32 [batch, n], titles string [batch, n]

The n best movies the user has not rated in the train split (rated ones are excluded
inside the model), best first. The brute-force model uses stock TF ops only; the ScaNN
one needs `import scann` in the process that loads it.
"""
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tfx import v1 as tfx
from tfx.types import artifact_utils

from models import features as F

SCANN_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
_RAW_SPEC = {F.USER_ID: tf.io.FixedLenFeature([], tf.string),
             F.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
             F.MOVIE_TITLE: tf.io.FixedLenFeature([], tf.string),
             F.MOVIE_YEAR: tf.io.FixedLenFeature([], tf.int64),
             F.MOVIE_GENRES: tf.io.VarLenFeature(tf.string)}


def read_examples(examples_uri: str, split: str) -> Dict[str, np.ndarray]:
    """The index's columns of one split of raw ExampleGen output, as numpy arrays."""
    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
    columns: Dict[str, list] = {key: [] for key in _RAW_SPEC}
    for batch in ds.map(lambda records: tf.io.parse_example(records, _RAW_SPEC)):
        for key, value in batch.items():
            if isinstance(value, tf.SparseTensor):
                value = tf.sparse.to_dense(value, default_value=b"")
                columns[key].extend(list(value.numpy()))
            else:
                columns[key].extend(value.numpy())
    return {key: np.array(values, dtype=object) for key, values in columns.items()}


def catalogue(splits: List[Dict[str, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique movies of the splits: ids [m], titles [m], genres [m, g] ('' pads), years [m]."""
    movies = {}
    for split in splits:
        for movie, title, genres, year in zip(split[F.MOVIE_ID], split[F.MOVIE_TITLE],
                                              split[F.MOVIE_GENRES], split[F.MOVIE_YEAR]):
            movies.setdefault(movie, (title, [g for g in genres if g], year))
    ids = sorted(movies)
    width = max(len(movies[m][1]) for m in ids)
    genres = np.array([movies[m][1] + [b""] * (width - len(movies[m][1])) for m in ids], dtype=object)
    return (np.array(ids, dtype=object), np.array([movies[m][0] for m in ids], dtype=object),
            genres, np.array([movies[m][2] for m in ids], dtype=np.int64))


def history(train: Dict[str, np.ndarray]) -> Dict[bytes, bytes]:
    """{user_id: 'movie|movie|...'}: the movies each user rated in the train split."""
    seen: Dict[bytes, set] = {}
    for user, movie in zip(train[F.USER_ID], train[F.MOVIE_ID]):
        seen.setdefault(user, set()).add(movie)
    return {user: b"|".join(sorted(movies)) for user, movies in seen.items()}


def _table(mapping: Dict[bytes, bytes], default: bytes) -> tf.lookup.StaticHashTable:
    keys, values = list(mapping), list(mapping.values())
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), tf.constant(values, tf.string)),
        default_value=default)


class Retriever(tf.Module):
    """Query tower + index + exclusion of the user's rated movies."""

    def __init__(self, towers, index, titles: Dict[bytes, bytes], seen: Dict[bytes, bytes], n: int):
        super().__init__()
        self.towers, self.index, self.n = towers, index, n
        self.titles = _table(titles, b"")
        self.seen = _table(seen, b"")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        scores, ids = self.index(self.towers.embed_users(user_id)["embeddings"])  # [batch, k]
        seen = tf.strings.split(self.seen.lookup(user_id), "|").to_tensor("")  # [batch, h]
        rated = tf.reduce_any(tf.equal(ids[:, :, None], seen[:, None, :]), axis=2)
        scores, best = tf.math.top_k(tf.where(rated, float("-inf"), scores), k=self.n)
        ids = tf.gather(ids, best, batch_dims=1)
        return {"movie_ids": ids, "scores": scores, "titles": self.titles.lookup(ids)}


def build_retrievers(towers, ids, titles, genres, years, seen, n: int, scann: dict) -> dict:
    """{'scann': Retriever, 'bruteforce': Retriever}, both indexed and called once."""
    embeddings = towers.embed_movies(movie_id=tf.constant(ids.tolist(), tf.string),
                                     movie_genres=tf.constant(genres.tolist(), tf.string),
                                     movie_year=tf.constant(years))["embeddings"]
    most_seen = max((v.count(b"|") + 1 for v in seen.values()), default=0)
    k = min(len(ids), n + most_seen)  # room to drop every rated movie and keep n
    leaves = scann.get("num_leaves") or max(1, int(np.sqrt(len(ids))))
    indexes = {
        "bruteforce": tfrs.layers.factorized_top_k.BruteForce(k=k),
        "scann": tfrs.layers.factorized_top_k.ScaNN(
            k=k, num_leaves=leaves,
            num_leaves_to_search=scann.get("num_leaves_to_search") or leaves,
            num_reordering_candidates=max(k, scann.get("num_reordering_candidates", 0))),
    }
    retrievers = {}
    for name, index in indexes.items():
        index.index(embeddings, tf.constant(ids.tolist(), tf.string))
        retriever = Retriever(towers, index, dict(zip(ids, titles)), seen, min(n, len(ids)))
        retriever.serve(tf.constant(list(seen)[:1] or [b""]))  # TFRS indexes must be called before saving
        retrievers[name] = retriever
    return retrievers


@tfx.dsl.components.component
def IndexBuilder(model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
                 examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
                 scann_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
                 bruteforce_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
                 num_candidates: tfx.dsl.components.Parameter[int] = 100,
                 num_leaves: tfx.dsl.components.Parameter[int] = 0,
                 num_leaves_to_search: tfx.dsl.components.Parameter[int] = 0) -> None:
    """Builds the ScaNN and brute-force retrieval SavedModels (0 = a size-based default)."""
    import scann  # noqa: F401  registers ScaNN's ops for saving

    towers = tf.saved_model.load(os.path.join(model.uri, "Format-Serving"))
    splits = artifact_utils.decode_split_names(examples.split_names)
    data = {split: read_examples(examples.uri, split) for split in splits}
    ids, titles, genres, years = catalogue(list(data.values()))
    retrievers = build_retrievers(towers, ids, titles, genres, years, history(data["train"]),
                                  num_candidates, {"num_leaves": num_leaves,
                                                   "num_leaves_to_search": num_leaves_to_search})
    for name, artifact in (("scann", scann_model), ("bruteforce", bruteforce_model)):
        retriever = retrievers[name]
        tf.saved_model.save(retriever, os.path.join(artifact.uri, "Format-Serving"),
                            signatures={"serving_default": retriever.serve},
                            options=SCANN_OPTIONS if name == "scann" else None)
