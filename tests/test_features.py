"""preprocessing_fn, run by TF Transform's Beam implementation on a few rows."""
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from models import features as F

SPEC = {key: tf.io.FixedLenFeature([1], tf.string)
        for key in (F.USER_ID, F.MOVIE_ID, F.USER_GENDER, F.USER_OCCUPATION, F.USER_ZIP, F.MOVIE_TITLE)}
SPEC.update({key: tf.io.FixedLenFeature([1], tf.int64) for key in (F.USER_AGE, F.MOVIE_YEAR, F.TIMESTAMP)})
SPEC.update({F.RATING: tf.io.FixedLenFeature([1], tf.float32),
             F.MOVIE_GENRES: tf.io.VarLenFeature(tf.string), F.MOVIE_TAGS: tf.io.VarLenFeature(tf.string)})
DAY = 86400


def row(user, movie, age, genres, rating, title=b"Heat (1995)", zip_code=b"94110", day=0, tags=()):
    return {F.USER_ID: [user], F.MOVIE_ID: [movie], F.USER_GENDER: [b"M"], F.USER_OCCUPATION: [b"other"],
            F.USER_ZIP: [zip_code], F.MOVIE_TITLE: [title], F.USER_AGE: [age], F.MOVIE_YEAR: [1990],
            F.TIMESTAMP: [day * DAY], F.RATING: [rating], F.MOVIE_GENRES: genres, F.MOVIE_TAGS: list(tags)}


def transform(rows, tmp_path):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        (out, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(F.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "transform"))
    metadata_io.write_metadata(metadata, str(tmp_path / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    return out


class Exported(F.RawFeatureModule):
    """What the exported models put in front of themselves, exposed for the test."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string),
                                  tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, None], tf.string),
                                  tf.TensorSpec([None, None], tf.string)])
    def movie_features(self, movie_id, movie_title, movie_year, movie_genres, movie_tags):
        return self.transform(movie_id=movie_id, movie_title=movie_title, movie_year=movie_year,
                              movie_genres=movie_genres, movie_tags=movie_tags)


def column(out, key):
    return [np.asarray(r[F.transformed_name(key)]).tolist() for r in out]


def test_preprocessing_fn_maps_raw_values_to_indices(tmp_path):
    rows = [row(b"a", b"10", 20, [b"Drama"], 4.0, day=0, tags=[b"noir"]),
            row(b"a", b"11", 20, [b"Drama", b"Comedy"], 3.0, title=b"Heat Wave (1990)", day=1),
            row(b"b", b"10", 60, [b"Drama"], 5.0, zip_code=b"10001", day=4),
            row(b"a", b"10", 20, [b"Drama"], 1.0, day=7)]
    out = transform(rows, tmp_path)
    # Vocabularies are ordered by frequency: user a (3) before b (1), movie 10 before 11,
    # Drama (4) before Comedy (1), ZIP region 941 (3) before 100 (1), 'heat' (4) before 'wave'.
    assert column(out, F.USER_ID) == [0, 0, 1, 0]
    assert column(out, F.MOVIE_ID) == [0, 1, 0, 0]
    assert column(out, F.USER_ZIP) == [0, 0, 1, 0]
    assert column(out, F.MOVIE_GENRES) == [[0], [0, 1], [0], [0]]
    assert column(out, F.MOVIE_TITLE) == [[0], [0, 1], [0], [0]]
    assert column(out, F.MOVIE_TAGS) == [[0], [], [], []]
    ages = column(out, F.USER_AGE)
    assert ages[0] == ages[1] == ages[3] < ages[2]  # 20 buckets below 60
    assert F.transformed_name(F.TIMESTAMP) not in out[0]  # no model reads it: requests carry no time
    assert [r[F.RATING] for r in out] == [4.0, 3.0, 5.0, 1.0]
    assert [r[F.LIKED] for r in out] == [1.0, 0.0, 1.0, 0.0]


def test_title_tokens_drop_year_and_punctuation():
    titles = tf.constant(["Se7en (1995)", "Monty Python's Life of Brian (1979)"])
    tokens = tf.sparse.to_dense(F.title_tokens(titles), b"")
    assert tokens.numpy().tolist() == [[b"se7en", b"", b"", b"", b""],
                                       [b"monty", b"python's", b"life", b"of", b"brian"]]


def test_exported_signature_transforms_raw_values_as_training_did(tmp_path):
    rows = [row(b"a", b"10", 20, [b"Drama"], 4.0, tags=[b"noir"]),
            row(b"b", b"11", 30, [b"Drama", b"Comedy"], 3.0, title=b"Heat Wave (1990)")]
    trained = transform(rows, tmp_path)
    module = Exported(None, tft.TFTransformOutput(str(tmp_path / "transform")))
    tf.saved_model.save(module, str(tmp_path / "model"), signatures={"movie_features": module.movie_features})
    served = tf.saved_model.load(str(tmp_path / "model")).signatures["movie_features"](
        movie_id=tf.constant(["10", "11", "99"]), movie_title=tf.constant(["Heat (1995)", "Heat Wave (1990)", "Heat"]),
        movie_year=tf.constant([1990, 1990, 1990], tf.int64),
        movie_genres=tf.constant([["Drama", ""], ["Drama", "Comedy"], ["Western", ""]]),
        movie_tags=tf.constant([["noir"], [""], [""]]))
    for key in (F.MOVIE_ID, F.MOVIE_YEAR):
        assert served[F.transformed_name(key)].numpy().tolist()[:2] == column(trained, key)
    for key in (F.MOVIE_GENRES, F.MOVIE_TITLE, F.MOVIE_TAGS):
        rows_served = tf.RaggedTensor.from_sparse(served[F.transformed_name(key)]).to_list()
        assert rows_served[:2] == column(trained, key)
    # An unseen movie and genre fall in the OOV bucket (vocabulary size: 2 movies, 2 genres).
    assert served[F.transformed_name(F.MOVIE_ID)].numpy()[2] == 2
    assert tf.RaggedTensor.from_sparse(served[F.transformed_name(F.MOVIE_GENRES)]).to_list()[2] == [2]
