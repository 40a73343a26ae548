"""MovieCatalogueGen: every movie of a MovieLens release, rated or not, as an Examples artifact
(split "catalogue", one gzipped TFRecord file) the retrieval index is built from: a tf.Example of
movie_features per movie, in id order; a title under several ids appears once, under the id
MovieLensExampleGen remaps its ratings to (duplicate_ids_merged counts the ids dropped).
"""
import logging
import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.movielens_tables import id_order, movie_features, read_tables

SPLIT = "catalogue"
FILE_NAME = "data_tfrecord-00000-of-00001.gz"


@tfx.dsl.components.component
def MovieCatalogueGen(input_base: tfx.dsl.components.Parameter[str],
                      catalogue: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples]
                      ) -> None:
    """Reads the movies (and tags) of the release in `input_base` into the `catalogue` split."""
    tables = read_tables(input_base)
    catalogue.split_names = artifact_utils.encode_split_names([SPLIT])
    split_dir = artifact_utils.get_split_uri([catalogue], SPLIT)
    tf.io.gfile.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, FILE_NAME), options="GZIP") as writer:
        for movie_id in sorted(tables.movies, key=id_order):  # a tf.Example per movie, in id order
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=movie_features(movie_id, tables.movies[movie_id]))).SerializeToString())
    catalogue.set_int_custom_property("duplicate_ids_merged", len(tables.aliases))
    logging.info("MovieCatalogueGen: %d movies (%d duplicate ids merged into the smallest of their title)",
                 len(tables.movies), len(tables.aliases))
    examples_utils.set_payload_format(catalogue, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(catalogue, "tfrecords_gzip")
