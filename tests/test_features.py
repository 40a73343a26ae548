"""preprocessing_fn, run by TF Transform's Beam implementation on a few rows."""
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models import features as F

SPEC = {key: tf.io.FixedLenFeature([1], tf.string)
        for key in (F.USER_ID, F.MOVIE_ID, F.USER_GENDER, F.USER_OCCUPATION)}
SPEC.update({F.USER_AGE: tf.io.FixedLenFeature([1], tf.int64),
             F.MOVIE_YEAR: tf.io.FixedLenFeature([1], tf.int64),
             F.RATING: tf.io.FixedLenFeature([1], tf.float32),
             F.MOVIE_GENRES: tf.io.VarLenFeature(tf.string)})


def row(user, movie, age, genres, rating):
    return {F.USER_ID: [user], F.MOVIE_ID: [movie], F.USER_GENDER: [b"M"], F.USER_OCCUPATION: [b"other"],
            F.USER_AGE: [age], F.MOVIE_YEAR: [1990], F.RATING: [rating], F.MOVIE_GENRES: genres}


def test_preprocessing_fn_maps_raw_values_to_indices(tmp_path):
    rows = [row(b"a", b"10", 20, [b"Drama"], 4.0), row(b"a", b"11", 20, [b"Drama", b"Comedy"], 3.0),
            row(b"b", b"10", 60, [b"Drama"], 5.0), row(b"a", b"10", 20, [b"Drama"], 1.0)]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path)):
        (out, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(F.preprocessing_fn)
    # Vocabularies are ordered by frequency: user a (3) before b (1), movie 10 before 11,
    # Drama (4) before Comedy (1).
    assert [r[F.transformed_name(F.USER_ID)] for r in out] == [0, 0, 1, 0]
    assert [r[F.transformed_name(F.MOVIE_ID)] for r in out] == [0, 1, 0, 0]
    assert [list(r[F.transformed_name(F.MOVIE_GENRES)]) for r in out] == [[0], [0, 1], [0], [0]]
    ages = [r[F.transformed_name(F.USER_AGE)] for r in out]
    assert ages[0] == ages[1] == ages[3] < ages[2]  # 20 buckets below 60
    assert [r[F.RATING] for r in out] == [4.0, 3.0, 5.0, 1.0]
