"""The ranking SavedModel and the Trainer's run_fn. Stock TF ops only; the Transform graph inside.

Signatures:
  serving_default(user_id: string [B], movie_id: string [B])
      -> rating float32 [B], like_probability float32 [B]
    Clients send ids only: the model holds tables (tf.lookup.StaticHashTable) from each
    user_id and movie_id seen in training to that user's and movie's transformed features;
    an unknown id gets the features Transform makes of ""/0 raw values.
  evaluate(examples: string [B], serialized raw tf.Examples as ExampleGen writes them)
      -> the same two outputs, from the examples' own features (TFMA reads this one).
  transformed_labels(examples: string [B]) -> liked float32 [B] (rating >= 4), the
    like head's label for TFMA (a preprocessing function in its ModelSpec).
"""
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models import features as F
from models import training
from models.ranking import constants as C
from models.ranking import model as M

EXAMPLES = tf.TensorSpec([None], tf.string, name="examples")


def side_features(file_patterns: list, tft_output: tft.TFTransformOutput, id_key: str,
                  names: List[str]) -> Tuple[List[str], Dict[str, list]]:
    """Each id's transformed side features, read from transformed examples.

    Args:
      file_patterns: transformed examples (Transform's gzipped TFRecords).
      id_key: raw id feature, "user_id" or "movie_id".
      names: transformed side features of that id, e.g. ["user_gender_xf"].

    Returns:
      (ids, {name: values}): the raw id strings, and per feature one value per id:
      an int, or for a SparseTensor feature its ids as one space-separated string.
    """
    vocabulary = [v.decode() if isinstance(v, bytes) else v
                  for v in tft_output.vocabulary_by_name(F.vocabulary_name(id_key))]
    rows: Dict[str, dict] = {}
    for batch in F.dataset(file_patterns, tft_output, 4096, shuffle=False):
        ids = batch[F.transformed_name(id_key)].numpy()
        columns = {name: _rows(batch[name]) for name in names}
        for i, index in enumerate(ids):
            if index < len(vocabulary) and vocabulary[index] not in rows:
                rows[vocabulary[index]] = {name: columns[name][i] for name in names}
    keys = sorted(rows)
    return keys, {name: [rows[key][name] for key in keys] for name in names}


def _rows(values) -> list:
    """A dense [B] tensor -> B ints; a SparseTensor [B, None] -> B space-separated id strings."""
    if isinstance(values, tf.SparseTensor):
        strings = tf.strings.reduce_join(tf.strings.as_string(tf.RaggedTensor.from_sparse(values)),
                                         axis=1, separator=" ")
        return [s.decode() for s in strings.numpy()]
    return [int(v) for v in values.numpy().reshape(-1)]


def _table(keys: List[str], values: list, default) -> tf.lookup.StaticHashTable:
    """string id -> int64 value, or -> string of space-separated ids for multi-valued features."""
    dtype = tf.string if isinstance(default, str) else tf.int64
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, dtype)), tf.constant(default, dtype))


class Ranker(F.RawFeatureModule):
    """The trained model behind the ids-only and the tf.Example signatures."""

    def __init__(self, model: M.RankingModel, tft_output: tft.TFTransformOutput, train_files: list):
        super().__init__(model, tft_output)
        defaults = self._defaults()
        self.tables = {}  # id key -> {transformed feature name: table from the raw id}
        for id_key, prefix in ((F.USER_ID, "user_"), (F.MOVIE_ID, "movie_")):
            names = [n for n in model.cardinalities if n.startswith(prefix) and n != F.transformed_name(id_key)]
            keys, values = side_features(train_files, tft_output, id_key, names)
            self.tables[id_key] = {name: _table(keys, values[name], defaults[name]) for name in names}

    def _defaults(self) -> dict:
        """Transformed features of a raw example whose values are all ""/0: an unknown id's."""
        raw = {key: tf.zeros([1, 0], spec.dtype) if isinstance(spec, tf.io.VarLenFeature)
               else tf.constant([""]) if spec.dtype == tf.string else tf.zeros([1], spec.dtype)
               for key, spec in self.tft_output.raw_feature_spec().items()}
        return {name: _rows(value)[0] for name, value in self.transform(**raw).items()}

    def _predict(self, features: dict) -> dict:
        out = self.model(features)
        return {"rating": out["rating"], "like_probability": tf.sigmoid(out["like_logit"])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id")])
    def serve(self, user_id, movie_id):
        features = self.transform(user_id=user_id, movie_id=movie_id)
        for id_key, ids in ((F.USER_ID, user_id), (F.MOVIE_ID, movie_id)):
            for name, table in self.tables[id_key].items():
                value = table.lookup(ids)
                if value.dtype == tf.string:  # a multi-valued feature's ids, space-separated
                    value = tf.strings.to_number(tf.strings.split(value), tf.int64).to_sparse()
                features[name] = value
        return self._predict(features)

    def _parse(self, examples):
        return tf.io.parse_example(examples, self.tft_output.raw_feature_spec())

    @tf.function(input_signature=[EXAMPLES])
    def evaluate(self, examples):
        return self._predict(self.tft_layer(self._parse(examples)))

    @tf.function(input_signature=[EXAMPLES])
    def transformed_labels(self, examples):
        rating = tf.reshape(self._parse(examples)[F.RATING], [-1])
        return {M.LIKED: tf.cast(rating >= F.LIKED_THRESHOLD, tf.float32)}


def save(ranker: Ranker, path: str) -> None:
    """Writes the SavedModel with its three signatures."""
    tf.saved_model.save(ranker, path, signatures={"serving_default": ranker.serve, "evaluate": ranker.evaluate,
                                                  "transformed_labels": ranker.transformed_labels})


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains on the transformed train split, stopping when the eval
    RMSE stops improving, and saves the serving model to fn_args.serving_model_dir."""
    config = fn_args.custom_config or {}
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    model = M.build(tft_output, config, M.mean_rating(fn_args.train_files, tft_output))
    training.fit(model, fn_args, tft_output, config.get("batch_size", C.BATCH_SIZE),
                 config.get("epochs", C.EPOCHS), callbacks=M.early_stopping(config))
    save(Ranker(model, tft_output, fn_args.train_files), fn_args.serving_model_dir)
