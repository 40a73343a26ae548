"""Readers of the pipeline's Examples artifacts (ExampleGen's splits, the movie catalogue),
shared by the IndexBuilder, the evaluators, a benchmark and the tests."""
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from models import features as F

PAIR_SPEC = {F.USER_ID: tf.io.FixedLenFeature([], tf.string),
             F.MOVIE_ID: tf.io.FixedLenFeature([], tf.string)}
RATING_SPEC = {**PAIR_SPEC, F.RATING: tf.io.FixedLenFeature([], tf.float32)}
MOVIE_SPEC = {F.MOVIE_ID: tf.io.FixedLenFeature([], tf.string),
              F.MOVIE_TITLE: tf.io.FixedLenFeature([], tf.string),
              F.MOVIE_YEAR: tf.io.FixedLenFeature([], tf.int64),
              # Lists of any length, '' padded to the batch's longest.
              F.MOVIE_GENRES: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True),
              F.MOVIE_TAGS: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)}


def read_examples(uri: str, split: str, spec: Dict[str, tf.io.FixedLenFeature],
                  batch_size: int = 4096) -> tf.data.Dataset:
    """Batches of one split of an Examples artifact (gzipped TFRecords), parsed by `spec`."""
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    if not files:
        raise FileNotFoundError(f"No files in {uri}/Split-{split}; did the producing component run?")
    return (tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
            .map(lambda records: tf.io.parse_example(records, spec)))


def history(train: tf.data.Dataset) -> Dict[bytes, List[bytes]]:
    """{user_id: [movie, ...]}: the movies each user rated in the train split (sorted)."""
    seen: Dict[bytes, set] = {}
    for batch in train:
        for user, movie in zip(batch[F.USER_ID].numpy(), batch[F.MOVIE_ID].numpy(), strict=True):
            seen.setdefault(user, set()).add(movie)
    return {user: sorted(movies) for user, movies in seen.items()}


def read_pairs(examples_uri: str, split: str, keys: tuple = (F.USER_ID, F.MOVIE_ID)) -> Tuple[np.ndarray, ...]:
    """(user ids [n], movie ids [n]) of one split of an Examples artifact; any RATING_SPEC `keys`."""
    batches = list(read_examples(examples_uri, split, {key: RATING_SPEC[key] for key in keys}))
    return tuple(np.concatenate([batch[key].numpy() for batch in batches]) for key in keys)


def read_catalogue(uri: str) -> dict:
    """{'ids': [I] movie ids, 'titles': [I] bytes, 'genres': [I, G] float multi-hot} of a catalogue artifact."""
    batches = list(read_examples(uri, "catalogue", MOVIE_SPEC))
    ids, titles, genres = ([row for batch in batches for row in batch[key].numpy()]
                           for key in (F.MOVIE_ID, F.MOVIE_TITLE, F.MOVIE_GENRES))
    rows = [set(row) - {b""} for row in genres]
    names = sorted(set().union(*rows))
    multi_hot = np.array([[g in row for g in names] for row in rows], np.float32).reshape(len(ids), len(names))
    return {"ids": ids, "titles": titles, "genres": multi_hot}
