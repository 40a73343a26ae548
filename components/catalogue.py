"""MovieCatalogueGen: every movie of a MovieLens release with its features, rated or not,
as an Examples artifact the retrieval index is built from (so movies nobody rated are
still retrievable by their features).

    catalogue_gen = MovieCatalogueGen(input_base="/path/to/ml-100k")
    catalogue_gen.outputs["catalogue"]  # Examples, one split "catalogue"

Output: <uri>/Split-catalogue/data_tfrecord-00000-of-00001.gz, gzipped TFRecords of one
tf.Example per line of the release's movies file: movie_id, movie_title, movie_year,
movie_genres (1+ values), movie_tags (0+ values), written in movie-id order. The release
and its parsers are those of MovieLensExampleGen (components/movielens_tables.py). A
movies table, even 32M's 87K movies, fits in memory, so this needs no Beam.
"""
import os
from typing import Dict, List

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.movielens_formats import Movie
from components.movielens_tables import movie_features, read_tables

SPLIT = "catalogue"
FILE_NAME = "data_tfrecord-00000-of-00001.gz"


def _order(movie_id: str) -> tuple:
    return (0, int(movie_id), "") if movie_id.isdigit() else (1, 0, movie_id)


def write_catalogue(movies: Dict[str, Movie], split_dir: str) -> List[str]:
    """Writes one tf.Example per movie into `split_dir`; returns the ids in written order."""
    tf.io.gfile.makedirs(split_dir)
    ids = sorted(movies, key=_order)
    with tf.io.TFRecordWriter(os.path.join(split_dir, FILE_NAME), options="GZIP") as writer:
        for movie_id in ids:
            example = tf.train.Example(features=tf.train.Features(
                feature=movie_features(movie_id, movies[movie_id])))
            writer.write(example.SerializeToString())
    return ids


@tfx.dsl.components.component
def MovieCatalogueGen(input_base: tfx.dsl.components.Parameter[str],
                      catalogue: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples]
                      ) -> None:
    """Reads the movies (and tags) of the release in `input_base` into the `catalogue` split."""
    movies = read_tables(input_base).movies
    catalogue.split_names = artifact_utils.encode_split_names([SPLIT])
    write_catalogue(movies, artifact_utils.get_split_uri([catalogue], SPLIT))
    examples_utils.set_payload_format(catalogue, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(catalogue, "tfrecords_gzip")
