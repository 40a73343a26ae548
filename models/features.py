"""Feature names and the Transform `preprocessing_fn` shared by both models.

Raw features (one tf.Example per rating, written by components/movielens.py):
  user_id, movie_id, user_gender, user_occupation, movie_title: bytes, one value
  user_age, movie_year, timestamp: int64, one value (movie_year 0 = unknown)
  movie_genres: bytes, one or more values
  rating: float, one value (1..5)
"""
import tensorflow as tf
import tensorflow_transform as tft

USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"
TIMESTAMP = "timestamp"
USER_AGE = "user_age"
USER_GENDER = "user_gender"
USER_OCCUPATION = "user_occupation"
MOVIE_TITLE = "movie_title"
MOVIE_YEAR = "movie_year"
MOVIE_GENRES = "movie_genres"

# Categorical features turned into vocabulary indices (one OOV bucket each).
VOCAB_FEATURES = [USER_ID, MOVIE_ID, USER_GENDER, USER_OCCUPATION, MOVIE_GENRES]
# Numeric features turned into quantile bucket indices.
BUCKET_FEATURES = {USER_AGE: 8, MOVIE_YEAR: 10}
NUM_OOV_BUCKETS = 1


def transformed_name(key: str) -> str:
    """The name Transform gives feature `key` in its output: 'user_id' -> 'user_id_xf'."""
    return key + "_xf"


def vocabulary_name(key: str) -> str:
    """The name of the vocabulary file Transform writes for feature `key`."""
    return key + "_vocab"


def vocabulary_size(tft_output: tft.TFTransformOutput, key: str) -> int:
    """Number of ids feature `key` can take after Transform, OOV bucket included."""
    return tft_output.vocabulary_size_by_name(vocabulary_name(key)) + NUM_OOV_BUCKETS


def preprocessing_fn(inputs: dict) -> dict:
    """Maps raw features to model inputs.

    Args:
      inputs: raw features; one-valued ones as dense [batch, 1] tensors,
        movie_genres as a SparseTensor [batch, None].

    Returns:
      `<name>_xf` features: int64 [batch] indices for ids, gender, occupation and
      the age/year buckets; movie_genres_xf an int64 SparseTensor [batch, None];
      and the label `rating` as float32 [batch].
    """
    outputs = {}
    for key in VOCAB_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _flat(inputs[key]), num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=vocabulary_name(key))
    for key, buckets in BUCKET_FEATURES.items():
        outputs[transformed_name(key)] = tft.bucketize(tf.cast(_flat(inputs[key]), tf.float32), buckets)
    outputs[RATING] = tf.cast(_flat(inputs[RATING]), tf.float32)
    return outputs


def _flat(x):
    """[batch, 1] -> [batch] for one-valued features; sparse ones pass unchanged."""
    return x if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def dataset(file_patterns: list, tft_output: tft.TFTransformOutput, batch_size: int,
            shuffle: bool = True) -> tf.data.Dataset:
    """Batches of transformed examples (Transform's gzipped TFRecords), parsed to tensors."""
    files = [name for pattern in file_patterns for name in tf.io.gfile.glob(pattern)]
    if not files:
        raise FileNotFoundError(f"No transformed examples match {file_patterns}; did Transform run?")
    spec = tft_output.transformed_feature_spec()
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(100_000, seed=42, reshuffle_each_iteration=True)
    return (ds.batch(batch_size)
            .map(lambda records: tf.io.parse_example(records, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


class RawFeatureModule(tf.Module):
    """Base of the exported modules: a trained model with the Transform graph in front."""

    def __init__(self, model: tf.keras.Model, tft_output: tft.TFTransformOutput):
        super().__init__()
        self.model = model
        self.tft_output = tft_output
        self.tft_layer = tft_output.transform_features_layer()

    def transform(self, **features: tf.Tensor) -> dict:
        """Raw serving inputs -> transformed features.

        Args:
          **features: raw features as [batch] tensors, or [batch, None] with '' padding
            for movie_genres. Transform outputs needing features not given are pruned.

        Returns:
          The `<name>_xf` features computable from the given ones.
        """
        spec = self.tft_output.raw_feature_spec()
        raw = {key: tf.sparse.from_dense(value) if isinstance(spec[key], tf.io.VarLenFeature)  # drops ''
               else tf.reshape(value, [-1, 1]) for key, value in features.items()}
        return self.tft_layer(raw)
