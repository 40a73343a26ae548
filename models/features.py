"""Feature names and the Transform `preprocessing_fn` shared by both models.

Raw features (one tf.Example per rating, written by components/movielens.py):
  user_id, movie_id, user_gender, user_occupation, user_zip, movie_title: bytes, one value
  user_age, movie_year, timestamp: int64, one value (user_age, movie_year 0 = unknown)
  movie_genres: bytes, one or more values; movie_tags: bytes, zero or more values
  rating: float, one value (0.5..5)
"""
import tensorflow as tf
import tensorflow_transform as tft

USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"
LIKED = "liked"  # label derived from the rating
TIMESTAMP = "timestamp"
USER_AGE = "user_age"
USER_GENDER = "user_gender"
USER_OCCUPATION = "user_occupation"
USER_ZIP = "user_zip"
MOVIE_TITLE = "movie_title"
MOVIE_YEAR = "movie_year"
MOVIE_GENRES = "movie_genres"
MOVIE_TAGS = "movie_tags"

# Categorical features turned into vocabulary indices (one OOV bucket each); the
# multi-valued ones (and the title's tokens) become SparseTensors of indices.
VOCAB_FEATURES = [USER_ID, MOVIE_ID, USER_GENDER, USER_OCCUPATION, USER_ZIP, MOVIE_GENRES, MOVIE_TAGS, MOVIE_TITLE]
VOCAB_TOP_K = {MOVIE_TITLE: 20_000, MOVIE_TAGS: 10_000}  # the rest keep every value
# Numeric features turned into quantile bucket indices.
BUCKET_FEATURES = {USER_AGE: 8, MOVIE_YEAR: 10}
NUM_OOV_BUCKETS = 1
LIKED_THRESHOLD = 4.0  # rating >= this is a "liked" movie
ZIP_PREFIX = 3  # US 3-digit ZIP regions


def transformed_name(key: str) -> str:
    """The name Transform gives feature `key` in its output: 'user_id' -> 'user_id_xf'."""
    return key + "_xf"


def vocabulary_name(key: str) -> str:
    """The name of the vocabulary file Transform writes for feature `key`."""
    return key + "_vocab"


def vocabulary_size(tft_output: tft.TFTransformOutput, key: str) -> int:
    """Number of ids feature `key` can take after Transform, OOV bucket included."""
    return tft_output.vocabulary_size_by_name(vocabulary_name(key)) + NUM_OOV_BUCKETS


def bucket_count(key: str) -> int:
    """Number of ids a bucketised feature can take after Transform."""
    return BUCKET_FEATURES[key] + 1


def title_tokens(titles: tf.Tensor) -> tf.SparseTensor:
    """Titles string [batch] -> their lower-cased words, year dropped ('Heat (1995)' -> ['heat']),
    a string SparseTensor [batch, None]."""
    text = tf.strings.regex_replace(tf.strings.lower(titles), r"\(\d{4}\)|[^a-z0-9' ]", " ")
    return tf.strings.split(text).to_sparse()


def liked(rating: tf.Tensor) -> tf.Tensor:
    """The `liked` label of ratings: float32 1.0 where rating >= LIKED_THRESHOLD, else 0.0."""
    return tf.cast(rating >= LIKED_THRESHOLD, tf.float32)


def preprocessing_fn(inputs: dict) -> dict:
    """Maps raw features (one-valued: dense [batch, 1]; movie_genres, movie_tags: SparseTensors
    [batch, None]) to model inputs.

    Returns:
      `<name>_xf` features: int64 [batch] vocabulary indices for ids, gender, occupation,
      ZIP region, and bucket indices for age and year; int64 SparseTensors [batch, None]
      for genres, tags and title tokens; labels rating and liked, float32 [batch]. The timestamp
      is not used: the serving signatures take ids, which carry no time.
    """
    values = {key: _flat(inputs[key]) for key in VOCAB_FEATURES}
    values[USER_ZIP] = tf.strings.substr(values[USER_ZIP], 0, ZIP_PREFIX)
    values[MOVIE_TITLE] = title_tokens(values[MOVIE_TITLE])
    outputs = {}
    for key, value in values.items():
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            value, top_k=VOCAB_TOP_K.get(key), num_oov_buckets=NUM_OOV_BUCKETS,
            vocab_filename=vocabulary_name(key))
    for key, buckets in BUCKET_FEATURES.items():
        outputs[transformed_name(key)] = tft.bucketize(tf.cast(_flat(inputs[key]), tf.float32), buckets)
    rating = tf.cast(_flat(inputs[RATING]), tf.float32)
    outputs[RATING] = rating
    outputs[LIKED] = liked(rating)
    return outputs


def _flat(x):
    """[batch, 1] -> [batch] for one-valued features; sparse ones pass unchanged."""
    return x if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def dataset(file_patterns: list, tft_output: tft.TFTransformOutput, batch_size: int,
            shuffle: bool = True) -> tf.data.Dataset:
    """Batches of transformed examples (Transform's gzipped TFRecords), parsed to tensors;
    reshuffled every pass when `shuffle`, else in one fixed shuffled order."""
    files = [name for pattern in file_patterns for name in tf.io.gfile.glob(pattern)]
    if not files:
        raise FileNotFoundError(f"No transformed examples match {file_patterns}; did Transform run?")
    spec = tft_output.transformed_feature_spec()
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    # Unshuffled reads still go through a fixed shuffle: ExampleGen writes each user's
    # ratings together, and batches of one user make in-batch negatives meaningless.
    ds = ds.shuffle(100_000, seed=42, reshuffle_each_iteration=shuffle)
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
        """Raw features, [batch] or ('' pads) [batch, None] for movie_genres and movie_tags ->
        the `<name>_xf` features computable from the given ones."""
        spec = self.tft_output.raw_feature_spec()
        raw = {key: tf.sparse.from_dense(value) if isinstance(spec[key], tf.io.VarLenFeature)  # drops ''
               else tf.reshape(value, [-1, 1]) for key, value in features.items()}
        return self.tft_layer(raw)
