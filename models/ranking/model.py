"""Deep & Cross Network ranking model (TFRS) and the Trainer's run_fn.

The Trainer saves a SavedModel, Transform graph inside, stock TF ops only:
  serving_default(user_id: string [batch], movie_id: string [batch])
      -> rating float32 [batch], the predicted rating
"""
from typing import Dict

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft

from models import features as F
from models import training
from models.ranking import constants as C


class RankingModel(tfrs.Model):
    """User and movie embeddings -> a Cross layer -> a deep network -> a rating."""

    def __init__(self, n_users: int, n_movies: int, dim: int, deep_layers=C.DEEP_LAYERS):
        super().__init__()
        self.user = tf.keras.layers.Embedding(n_users, dim)
        self.movie = tf.keras.layers.Embedding(n_movies, dim)
        self.cross = tfrs.layers.dcn.Cross()
        self.deep = tf.keras.Sequential([tf.keras.layers.Dense(n, activation="relu") for n in deep_layers])
        self.rating = tf.keras.layers.Dense(1)
        self.task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(),
                                       metrics=[tf.keras.metrics.RootMeanSquaredError("rmse")])

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """int64 user_id_xf, movie_id_xf [batch] -> predicted rating float32 [batch]."""
        x0 = tf.concat([self.user(inputs[F.transformed_name(F.USER_ID)]),
                        self.movie(inputs[F.transformed_name(F.MOVIE_ID)])], axis=1)
        return tf.squeeze(self.rating(self.deep(self.cross(x0))), axis=1)

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.task(labels=inputs[F.RATING], predictions=self(inputs))


def build(tft_output: tft.TFTransformOutput, config: dict) -> RankingModel:
    model = RankingModel(F.vocabulary_size(tft_output, F.USER_ID),
                         F.vocabulary_size(tft_output, F.MOVIE_ID),
                         config.get("embedding_dim", C.EMBEDDING_DIM),
                         config.get("deep_layers", C.DEEP_LAYERS))
    model.compile(optimizer=tf.keras.optimizers.Adam(config.get("learning_rate", C.LEARNING_RATE)))
    return model


class Ranker(F.RawFeatureModule):
    """The trained model behind a raw-feature serving signature."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"),
                                  tf.TensorSpec([None], tf.string, name="movie_id")])
    def serve(self, user_id, movie_id):
        return {"rating": self.model(self.transform(user_id=user_id, movie_id=movie_id))}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point: trains on the transformed train split, reports eval
    RMSE, saves the serving model to fn_args.serving_model_dir."""
    config = fn_args.custom_config or {}
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    model = build(tft_output, config)
    training.fit(model, fn_args, tft_output, config.get("batch_size", C.BATCH_SIZE),
                 config.get("epochs", C.EPOCHS))
    ranker = Ranker(model, tft_output)
    tf.saved_model.save(ranker, fn_args.serving_model_dir, signatures={"serving_default": ranker.serve})
